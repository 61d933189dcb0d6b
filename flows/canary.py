"""The canary flow: ship a new image to the canary service and walk it through the spec's stages.

Each stage shifts the ALB weights (read back and verified), bakes under the judge every
analysis tick, and decides: promote, hold or roll back. After 100 % it watches the new
version for the spec's ``monitor_seconds`` while the old one still runs, and rolls back on
the monitoring guardrail. A run that fails, crashes or is cancelled rolls back through its
state hooks, so traffic never stays on a version nobody is watching. With ``finalize`` the run
then finalizes its promotion (``flows/finalize.py``'s steps, nothing recorded): a failure there
leaves the promotion in place, and its hooks leave the run alone.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Iterator

from prefect import flow, get_client, get_run_logger
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.context import FlowRunContext
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect_aws import AwsCredentials

from flows.approvals import duration_said, prefect_approver
from flows.engine import NoticeUnsent, NullJournal, pause_notice, run_stages
from flows.env import CANARY_FLOW, attempt_starts, load_session, mark_finalizing, session_in_region
from flows.finalize import FINALIZE_FLOW, ROOM, run_finalize, runs_within
from flows.hooks import rollback_hooks
from flows.artifacts import create_markdown_artifact, for_people
from flows.journal import artifact_key, stage_table
from flows.monitor import MonitorResult, after_window, run_monitor
from flows.params import Actor
from flows.rollback import judge_rollback, rollback_healthy_seconds, sleep_wall
from flows.slot import HeldSlot, SlotTaken, hand_over, hooks_release_slots, lease_said, record_lease, take_back
from rollway.api_error import as_cause
from rollway.approvals import ApprovalAnswer, Approver
from rollway.bounds import duration_words, seconds_said
from rollway.clock import ClockSettings
from rollway.decide import Pause, StageState
from rollway.failure_words import failures_writable
from rollway.environment import Environment
from rollway.flag_binding import CANARY_RUN_ROLLOUT
from rollway.finalize import (UNRECORDED_AGAIN, UNRECORDED_ROLLBACK, FinalizeIncomplete, FinalizeRefused,
                              finalized_said, is_finalized, moved_onto_stable)
from rollway.latency_unpublished import published, served_unpublished
from rollway.lease import RenewalPolicy
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.aws.denied import names_rollout_denials, rollout_said
from rollway.aws.ecr import EcrImagePinner
from rollway.aws.metric_schema import RESPONSE_TIME_P99, SLOW_REQUEST_COUNT
from rollway.image import with_pin
from rollway.model import Observation, ServiceState
from rollway.phases import RolloutPhase
from rollway.preflight_checks import (account_refusal, attachment_refusal, dead_letter_refusal, health_check_refusal,
                                     stable_health_check_refusal)
from rollway.report import RolloutResult, StageReport, markdown_cell, markdown_table
from rollway.spec import Approvals, RolloutSpec, default_phases
from rollway.targets import Targets
from rollway.url_passwords import passwords_hidden
from tasks import ecs, flags, metrics, traffic, undoable


class RolloutRefused(RuntimeError):
    """The service is not in a state a new rollout can start from."""


@contextmanager
def before_any_write(targets: Targets | None = None) -> Iterator[None]:
    """Whatever fails in here failed before the run wrote anything: a refusal to start.

    The rollback hooks leave a refused run alone. Raised as anything else (an unknown bound
    flag, a misnamed target group, a read that kept failing), the failure made the hook roll
    back whatever rollout held the service: a promoted version, or another run's rollout.
    A read the role may not make is said as the statement of the rollout's policy granting it
    (``rollout_said``; ``targets``: the run's own names), not AWS's bare refusal.
    """
    try:
        yield
    except RolloutRefused:
        raise
    except Exception as err:
        said = rollout_said(err, targets)
        raise RolloutRefused(f"refused before any write: {said}") from err


def phase_plan_refusal(spec: RolloutSpec) -> str | None:
    """Why the canary flow must not run ``spec``, whose phase plan it would ignore; None if it may.

    The canary flow runs every stage in one run and never decommissions the old service, so a
    plan of weekly phases, or a phase that decommissions, would be dropped without a word. The
    default plan is let through: every spec carries it unless told otherwise (a form may send
    it back as given), and the canary flow has always run those stages straight through.
    """
    if spec.phases == default_phases():
        return None
    if len(spec.phases) > 1:
        names = ", ".join(repr(p.name) for p in spec.phases)
        return (f"the canary flow runs no weekly phases (this spec has {len(spec.phases)}: {names}); use the "
                "progressive flow (progressive_rollout, phased), or leave phases out to run every stage in one run")
    if spec.phases[0].decommission:
        return (f"the canary flow does not decommission the old service (phase {spec.phases[0].name!r} asks it to); "
                "use the progressive flow, or the canary flow's finalize, which moves the new version onto the stable "
                "service instead")
    return None


def refuse_phase_plan(spec: RolloutSpec) -> None:
    """Raise RolloutRefused (a refusal the hooks leave alone) for a plan the canary flow would ignore."""
    refusal = phase_plan_refusal(spec)
    if refusal is not None:
        raise RolloutRefused(f"refused before any AWS call: {refusal}")


def unanswered(approvals: Approvals) -> str:
    """What an approval pause left unanswered does, and how to choose the other way."""
    then = ("rolls the rollout back (approvals.on_timeout: rollback; set approvals.on_timeout: hold to keep the "
            "weights and ask again instead)" if approvals.on_timeout == "rollback"
            else "keeps the weights and asks again (approvals.on_timeout: hold)")
    return f"a pause unanswered for {duration_said(approvals.timeout_seconds, given=True)} {then}"


def approvals_asked(spec: RolloutSpec) -> str:
    """What a "Rollout starting" notice ends with of the stages that ask for approval, and what an
    unanswered pause does ("" when none asks)."""
    asks = [f"{s.weight}%" for s in spec.stages if s.approval]
    return f"; approval before {', '.join(asks)}: {unanswered(spec.approvals)}" if asks else ""


# Requests to the stable service, over the preflight's read, above which an application that
# publishes its latency metrics has published some: fewer can fall in periods not yet published.
LATENCY_SEEN_FLOOR = 100


def _latency_unpublished(seen: Observation, settled_until: float) -> int | None:
    """The stable service's request count when it is high enough that the application's latency
    metrics should show and none did (an absent slow count reads as 0, so a misnamed namespace
    would pass every latency guardrail unmeasured); None otherwise.

    Only periods that ended by ``settled_until`` count: CloudWatch fills a period's metrics in
    over a minute or so, the load balancer's often before the application's, and the newest
    periods read with requests and no latency yet warned of a namespace that was fine.

    A canary that published some (a resume reads it beside the stable service) is measured on
    them: the version rolled out may be the first to publish them, and "will measure nothing, check
    the namespace" sent people after a namespace that was right."""
    settled = [i for i in seen.intervals if i.t <= settled_until]
    if published(settled, "canary"):
        return None
    served = served_unpublished(settled, "baseline")
    return served if served >= LATENCY_SEEN_FLOOR else None


def latency_unpublished_said(env: Environment, spec: RolloutSpec, seen: Observation | None = None,
                             now: float | None = None) -> None:
    """Warn when the stable service served requests and its application published none of its
    latency metrics (``_latency_unpublished``): the stages then pass on 0 slow requests, measured
    on neither version. At a rollout's start (``seen``: the preflight's read, at ``now``) and at a
    resume, which reads the periods itself: a run resumed days later said nothing of it, and whoever
    followed that run's log never heard its stages pass unmeasured on latency. A resume's read that
    fails says nothing here: the stages' own looks say a read that fails."""
    interval, delay = spec.analysis.interval_seconds, spec.analysis.metrics_delay_seconds
    if seen is None:
        now = env.clock.now()
        seen = metrics.observe(env.metrics, now - 2 * interval - delay, now)
    if seen.error is not None:
        return
    unseen = _latency_unpublished(seen, now - delay)
    if unseen is not None:
        t = env.targets
        get_run_logger().warning(
            "the load balancer counted %d requests to %s in the %d s before the last %s (metrics_delay_seconds: "
            "periods still filling in are not read), but namespace %r holds none of the application's latency "
            "metrics (%s, %s) for it: the slow-request and p99 guardrails will measure nothing. Check the "
            "targets' metrics_namespace and that the application publishes them", unseen, t.stable_service,
            2 * interval, seconds_said(delay), t.metrics_namespace, SLOW_REQUEST_COUNT, RESPONSE_TIME_P99)


def setup_refusal(env: Environment, spec: RolloutSpec, stable: ServiceState, canary: ServiceState) -> str | None:
    """Why no stage could pass with the target groups the router looked up: a service not
    attached to its own group (or attached to the other's too), a canary group whose health
    check takes longer than ``healthy_timeout_seconds``, or a stable group whose health check
    takes longer than a rollback's wait for it; None if nothing is wrong."""
    t = env.targets
    groups = {"stable": (env.router.target_group("stable"), t.stable_target_group),
              "canary": (env.router.target_group("canary"), t.canary_target_group)}
    for service, version, other in ((canary, "canary", "stable"), (stable, "stable", "canary")):
        refusal = attachment_refusal(service, version, *groups[version], *groups[other])
        if refusal is not None:
            return refusal
    wait = spec.healthy_timeout_seconds
    return (health_check_refusal(*groups["canary"], wait)
            or stable_health_check_refusal(*groups["stable"], rollback_healthy_seconds(wait), wait))


def dead_letter_check(env: Environment, *, run_again: str | None = None) -> str | None:
    """Why the watched queues' dead letters cannot be watched, as SQS answers now
    (``dead_letter_refusal``); None when they can, or when nothing looks them up (``env.queues``).

    ``run_again``: on a rollout under way (its next phase, a resume), the flow the refusal says
    to run again; None at a rollout's start. A lookup the role may not make is a RolloutRefused
    naming the statement granting it (``before_any_write``)."""
    if env.queues is None:
        return None
    with before_any_write(env.targets):
        return dead_letter_refusal(env.targets, env.queues.lookup(), run_again=run_again)


def preflight(env: Environment, spec: RolloutSpec) -> tuple[ServiceState, ServiceState]:
    """Resolve every name, read the stable and canary services and the metrics with read-only
    calls, so bad targets (or unknown bound flags, metrics that cannot be read, or watched
    queues or dead-letter queues that are not there) fail before any write, as RolloutRefused.

    Returns:
        The stable and the canary service, as they are before the rollout.
    """
    t = env.targets
    with before_any_write(t):
        # Before any call: ECS looks a cluster's name up in the credentials' account, whatever
        # account its ARN named (a same-named cluster of this account was rolled out to).
        refusal = account_refusal(t, env.account)
        if refusal is not None:
            raise RolloutRefused(refusal)
        # Bounded as the reads below: on the run's clients a load balancer that stopped answering
        # held the run's start about a minute, silent. What it looks up is kept for the writes.
        traffic.resolve_within(env.router, spec.verify_timeout_seconds)
        if spec.flags and env.flags is not None:
            flags.check_bindings(env.flags, list(spec.flags), env.ledger, t.canary_service)
        weights = traffic.weights_within(env.router, spec.verify_timeout_seconds)
        record = env.ledger.get(t.canary_service) if env.ledger is not None else None
        if weights.canary != 0:
            if record is not None and record.phase is RolloutPhase.PROMOTED and not is_finalized(record):
                # Rolling back would put the previous version back in production: not the advice to give.
                raise RolloutRefused(
                    f"the canary target group carries {weights.canary}% of traffic because rollout "
                    f"{record.rollout_id} promoted {record.image}: {t.canary_service} is production now. Finalize "
                    "that promotion first: run the finalize flow (the finalize deployment in the Prefect UI) or "
                    f"`rollway finalize`, which puts {record.image} on {t.stable_service}, moves the traffic back to "
                    f"it and scales {t.canary_service} to 0 (once the rollout's monitoring window has passed); then "
                    "start this rollout again"
                )
            if weights.canary == 100:
                # All of it, and no promotion in the ledger: the `canary` flow's, which keeps none.
                raise RolloutRefused(
                    f"the canary target group carries 100% of traffic and the ledger records no promotion of it "
                    f"still to finalize: probably a promotion by the `canary` flow, which keeps no ledger, and "
                    f"{t.canary_service} is production now. To keep that version, finalize it: run "
                    f"{UNRECORDED_AGAIN}, which puts it on {t.stable_service}, moves the traffic back to it and "
                    f"scales {t.canary_service} to 0; then start this rollout again. If that version should not "
                    f"stay, roll it back with {UNRECORDED_ROLLBACK} instead"
                )
            if record is not None and not record.phase.terminal:
                # Said how: "resume that rollout" named neither it nor a flow, and progressive_rollout
                # resumes it only given its image again.
                raise RolloutRefused(
                    f"the canary target group already carries {weights.canary}% of traffic for rollout "
                    f"{record.rollout_id} of {record.image} ({record.phase.value}): let it finish or roll it back "
                    f"before starting a new one. {_how_to_resume_or_abort(record)}"
                )
            # No rollout under way in the ledger, so `rollway abort` would refuse ("nothing to
            # abort"): the traffic is a `canary` flow run's (it keeps no ledger) or was moved by hand.
            raise RolloutRefused(
                f"the canary target group already carries {weights.canary}% of traffic and the ledger records no "
                f"rollout of {t.canary_service} under way: a `canary` flow run's, which keeps no ledger, or weights "
                "moved by hand. If a `canary` flow run drives it (`rollway status` lists one), let it finish, answer "
                "its pause (`rollway promote`, or `rollway abort`, which rejects it and rolls back) or cancel it; "
                f"otherwise roll it back with {UNRECORDED_ROLLBACK}. Then start this rollout again"
            )
        if record is not None and not record.phase.terminal:
            # No traffic on the canary, yet a rollout holds it: one waiting for the approval
            # before its first stage, or one whose run stopped before its first shift or in the
            # middle of its rollback. Deploying over its revision would send its first stage to
            # this image, under its name.
            raise RolloutRefused(open_rollout_refusal(record, t.canary_service))
        stable = ecs.describe_service(env.deployer, t.stable_service)
        canary = ecs.describe_service(env.deployer, t.canary_service)
        # Looked up with the rule above (no call of their own): a set-up no stage could pass is
        # refused here, not found out after the canary was deployed and took traffic.
        refusal = setup_refusal(env, spec, stable, canary)
        if refusal is not None:
            raise RolloutRefused(refusal)
        # Names first used after the first write (the container the image goes into, the alert
        # topic) are looked up here, so a misspelt one is a refusal the hooks leave alone, not a
        # failure mid-rollout whose hook rolls back and pages people.
        ecs.image_of(env.deployer, stable.task_definition)
        resolve_topic = getattr(env.notifier, "resolve", None)
        if resolve_topic is not None:
            resolve_topic()
        # CloudWatch answers a dead-letter queue that is not there (a misspelt dlq_name, a queue
        # deleted or of another region) with no data, read as an empty queue: the DLQ guardrail
        # would be blind for the whole rollout, and nothing would say so.
        refusal = dead_letter_check(env)
        if refusal is not None:
            raise RolloutRefused(refusal)
        # Every stage is judged on CloudWatch: a role that may not read it (AccessDenied) is refused
        # here, not found out after the first shift, when the canary serves users and no stage can
        # be judged. One read of the last periods; no data in them (a quiet hour) is no refusal.
        interval, delay = spec.analysis.interval_seconds, spec.analysis.metrics_delay_seconds
        now = env.clock.now()
        seen = metrics.observe(env.metrics, now - 2 * interval - delay, now)
        if seen.error is not None:
            raise RolloutRefused(f"the metrics every stage is judged on cannot be read: {seen.error}. Nothing was "
                                 "changed; start the rollout again once CloudWatch answers")
        latency_unpublished_said(env, spec, seen, now)
        if moved_onto_stable(record, stable):
            # A finalize moved the traffic onto the promoted version on stable and stopped before
            # it finished: its next run scales the canary down, which must not be the canary this
            # rollout deploys to, then tells people and records it. With the canary at 0 already
            # (it stopped at the notice or the ledger write), a rollout begun now would leave the
            # promotion never announced nor recorded as finalized, finalize refusing it for good.
            # (A finalize that stopped before moving anything, its rollout since rolled back by
            # hand, has nothing left to do and blocks nothing.)
            left = f"scale {t.canary_service} down, " if canary.desired > 0 else ""
            raise RolloutRefused(
                f"the finalize of rollout {record.rollout_id} moved the traffic to {t.stable_service} and did not "
                f"finish: run `rollway finalize` (or the finalize flow) again to {left}tell people and record it, "
                "then start this rollout"
            )
        return stable, canary


def pin_image(env: Environment, spec: RolloutSpec) -> str:
    """The reference the canary's revision names: ``spec.image`` pinned to the digest its tag
    names now, asked once, before the rollout's first write (an image given by digest as is).

    A tag can be pushed again while a rollout runs (for weeks, in the progressive flow), and every
    task ECS starts from a revision naming it later (a restart, a scale-out, a rollback restoring
    it) would pull the moved image, which no stage judged. An image rollway cannot pin (not in ECR
    in the targets' region, a tag the repository does not hold) is refused here, as a refusal the
    hooks leave alone, rather than rolled out by its tag: the remedy, its digest, is one copy away.

    Raises:
        RolloutRefused: the image cannot be pinned; the message says why and what to give instead.
    """
    if env.images is None:  # no registry to ask (the fakes)
        return spec.image
    with before_any_write(env.targets):
        pinned = env.images.pin(spec.image)
    if pinned != spec.image:
        get_run_logger().info("%s names %s now: the canary's revision names that digest, so every task it starts "
                              "runs the image the stages judge, whatever the tag names later", spec.image, pinned)
    return pinned


def pinning_in_any_region(env: Environment, credentials: AwsCredentials) -> Environment:
    """``env`` whose image pinner also reads ECR in regions other than the targets' (a
    shared-services registry), on the run's ``credentials`` (the block as the run loaded it)
    through the runs' one session path (``session_clients``), one session per region, made only
    when an image is there. Other pinners are left as they are.

    A tag in such a registry was refused, and the person had to look its digest up by hand,
    though the credentials that run the rollout could read it. The block is not loaded again:
    the run has it, and a second read of the Prefect API could find it changed since.
    """
    if not isinstance(env.images, EcrImagePinner):
        return env

    @functools.cache
    def ecr_in(region: str) -> Any:
        return session_in_region(credentials, region,
                                 why=f" in {region}, to read which image the rollout's tag names in ECR there")("ecr")

    return replace(env, images=env.images.reading_regions(ecr_in))


def open_rollout_refusal(record: RolloutRecord, service: str) -> str:
    """Why a new rollout cannot start while ``record`` (unfinished) holds the canary, and what to do."""
    # The tag with its digest: pushed again since, the tag alone names another image than the one it runs.
    held = (f"rollout {record.rollout_id} of {with_pin(record.image, record.pinned_image)} holds {service} "
            f"({record.phase.value}")
    if record.phase is RolloutPhase.ROLLING_BACK:
        return (f"{held}): its rollback was started and is not recorded as finished. If no run is finishing it, "
                "`rollway abort` does; then start this rollout again")
    if record.weights.canary:
        # The ledger's shifts sent traffic to it and the load balancer sends none.
        return (f"{held}, at {record.weights.canary}% in the ledger) while the load balancer sends it no traffic: "
                "the weights were moved outside the rollout's record, by hand or by a rollback the ledger could not "
                "record (its run failed with RollbackUnrecorded and says why), so resuming it would report drift. "
                "Once the ledger accepts writes, `rollway abort` rolls it back; then start this rollout again")
    # Said how: "let the rollout resume" named no flow that resumes it.
    return f"{held}, no traffic on it yet). {_how_to_resume_or_abort(record)}; then start this rollout again"


def _how_to_resume_or_abort(record: RolloutRecord) -> str:
    """How an unfinished rollout is taken on (its approval answered, its ended run resumed) or
    rolled back: progressive_rollout resumes it only given its image again, so that is named."""
    return ("A run of it waiting for an approval (`rollway status` shows it) is answered with `rollway promote`; one "
            "whose run has ended is resumed by advance_phase (the weekly schedule's, or run by hand) or by "
            f"progressive_rollout of {record.image}; `rollway abort` rolls it back")


# The canary flow keeps no ledger, so it has no ledger lease to keep a second `canary` run of the
# service out: without one, a run started while another deployed passed the preflight (the canary
# still at 0 %) and both drove the same listener rule. This Prefect global concurrency limit, one
# slot per canary service, is that lease: held under a lease the run renews for as long as it holds
# the slot (flows/slot.py), through its failure hook's rollback, so a run that dies frees it within
# CANARY_SLOT_LEASE_SECONDS.
CANARY_SLOT_LEASE_SECONDS = 300.0
CANARY_SLOT_POLICY = RenewalPolicy(lease_seconds=CANARY_SLOT_LEASE_SECONDS)


def canary_slot_name(targets: Targets) -> str:
    """The global concurrency limit a `canary` run of ``targets``' canary service holds.

    Colons, which ECS names never hold, keep cluster ``prod`` + service ``eu-web`` apart from
    cluster ``prod-eu`` + service ``web``."""
    return f"rollway-canary:{targets.cluster}:{targets.canary_service}"


@contextmanager
def one_canary_run(targets: Targets, *, policy: RenewalPolicy = CANARY_SLOT_POLICY) -> Iterator[None]:
    """Hold the service's canary slot while the body runs; RolloutRefused if another run holds it.

    The limit (one slot) is created on first use, and taken so that a missing or unreadable limit
    refuses rather than letting the run through unguarded. The lease is renewed on a thread for as
    long as the slot is held, whatever the API does meanwhile (flows/slot.py). When the body
    returns, the slot is released. When it raises in a flow run whose state hooks take slots over
    (``rollback_hooks``), the slot stays held and goes to the hook, which releases it once its
    rollback is over: a second run cannot start under that rollback. A retry of the same flow run
    holds it again.

    Args:
        targets: The service the run drives.
        policy: How the lease is renewed (tests shorten the waits).
    """
    name = canary_slot_name(targets)
    run = FlowRunContext.get()
    run_id = run.flow_run.id if run is not None and run.flow_run is not None else None
    log = get_run_logger() if run is not None else None
    slot = take_back(run_id) if run_id is not None else None
    if slot is not None:
        log.info("this attempt holds the Prefect concurrency slot %r its earlier attempt handed over", name)
    else:
        try:
            _create_slot(name)
            slot = HeldSlot.take(name, policy, flow_run_id=run_id, logger=log)
        except SlotTaken as err:
            raise RolloutRefused(
                f"another canary run of {targets.canary_service} is under way (it holds the Prefect concurrency "
                f"limit {name!r}; a run that died frees it within {lease_said(policy)}): "
                "let it finish or cancel it, then start this one; nothing was changed"
            ) from err
        except Exception as err:
            # httpx's words quote the URL asked: PREFECT_API_URL's password with it, behind basic auth
            # (the run's log prints the refusal's cause too).
            raise RolloutRefused(f"refused before any write: could not take the Prefect concurrency limit {name!r} "
                                 f"that keeps one canary run per service: {passwords_hidden(str(err))}"
                                 ) from as_cause(err)
        slot.start()
        if run_id is not None:
            try:
                record_lease(run_id, slot)
            except Exception as err:  # noqa: BLE001 - the slot is held; only a hook elsewhere misses it
                log.warning("could not record the lease on the Prefect concurrency slot %r on this flow run (%s): a "
                            "hook in another process (after a crash, or the UI's Cancel) will roll back without the "
                            "slot, which frees itself within %s", name, passwords_hidden(str(err)), lease_said(policy))
    try:
        yield
    except GeneratorExit:
        slot.release()
        raise
    except BaseException:
        if run is not None and run_id is not None and hooks_release_slots(run.flow):
            # Its hook rolls back next, in this thread: the slot stays held, renewed, until it is done.
            hand_over(run_id, slot)
        else:
            slot.release()
        raise
    slot.release()


def _create_slot(name: str) -> None:
    """Create the one-slot limit unless an earlier run (or a person) made it."""
    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return
        except ObjectNotFound:
            pass
        try:
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        except ObjectAlreadyExists:
            pass  # another run made it a moment ago


@names_rollout_denials
def run_canary(env: Environment, spec: RolloutSpec, approver: Approver, *, actor: str = "operator",
               finalize: bool = False) -> RolloutResult:
    """Deploy ``spec.image`` to the canary service and run the stages. Plain Python over tasks.

    One run per canary service at a time (``one_canary_run``). With ``finalize``, a promotion
    whose window passed is finalized in this run (see the flow).
    """
    refuse_phase_plan(spec)
    with one_canary_run(env.targets):
        result = _run_canary(env, spec, approver, actor=actor, finalize=finalize)
    _summary_artifact(env, spec, result)
    return result


class StageTables(NullJournal):
    """This flow's journal: it records nothing, shows each stage's table as the stage ends, and
    tells people when the run waits for them.

    The summary comes only with a run that ends: a run that failed or was cancelled mid-rollout
    left an empty Artifacts tab, though its hook's rollback page names the run as the record.
    """

    def __init__(self, env: Environment, spec: RolloutSpec) -> None:
        self.env = env
        self.spec = spec
        self.service = env.targets.canary_service
        self._weights = None  # where this run last moved the traffic (None: before its first stage)
        self._waiting_at: int | None = None  # the stage of the wait people were told of
        self._told: set[str] = set()  # the causes of that wait's questions told so far
        # Why the newest notice of that wait may not have gone out (None: it did).
        self._unsent: NoticeUnsent | None = None

    def shifted(self, state, before, after, reason, flags, from_stage) -> None:
        self._weights = after

    def asking(self, pause: Pause, held_by: ApprovalAnswer | None = None, judging: str = "",
               taken_over: None = None) -> NoticeUnsent | None:
        """Tell people a pause waits for them, as the progressive flow does: a person learnt of a
        pause only from the UI, and an unanswered one rolled a healthy canary back. Once per wait
        and cause (a timeout whose policy holds asks the same question again, which nobody
        answered the first time), and again after a person's hold. Returns why the wait's newest
        notice was not sent (the form says it), or None. ``taken_over``: always None (``taken_over``:
        a canary run keeps no ledger, and no run takes its pause over)."""
        if pause.stage_index != self._waiting_at:
            self._waiting_at, self._told, self._unsent = pause.stage_index, set(), None
        if pause.cause in self._told and held_by is None:
            return self._unsent
        self._told.add(pause.cause)
        self._unsent = pause_notice(self.env, self.spec, pause,
                                    paused_at=datetime.fromtimestamp(self.env.wall(), timezone.utc),
                                    held_by=held_by, judging=judging, weights=self._weights)
        return self._unsent

    def answered(self, pause: Pause, answer: ApprovalAnswer, approved_stage: int | None) -> None:
        # Answered: the next pause is another wait. Not by a timeout that holds: the same wait is
        # asked again, and its question was told already.
        if not (answer.timed_out and answer.action == "hold"):
            self._waiting_at = None

    def stage_ended(self, state: StageState, report: StageReport) -> None:
        stage_table(self.service, self.spec.stages[state.stage_index].weight, report)


def _summary_artifact(env: Environment, spec: RolloutSpec, result: RolloutResult) -> None:
    """The run's outcome and its stage table (verdicts, reasons, counts) in the Artifacts tab.

    This flow keeps no ledger, hence no journal, whose artifacts the progressive flow leaves:
    without this, a canary run's stages were shown only in its logs. The rollout is over by
    now: an API error here is logged, never a failed run (whose hooks would roll back).
    """
    steps = "\n".join(f"- {step}" for step in result.rollback.steps) if result.rollback is not None else ""
    for_people("summary", lambda: create_markdown_artifact(
        key=artifact_key(env.targets.canary_service, "summary"),
        # The reason may quote a rejection's comment (a text area): on one line, so a line break
        # in it cannot start markdown of its own.
        markdown=f"# Canary of `{spec.image}` {result.outcome.replace('_', ' ')}"
        + (" (monitoring unverified)" if result.monitoring_verified is False else "")
        + (f"\n\nPinned as `{result.pinned_image}`: the image every stage judged, whatever the tag names later."
           if result.pinned_image not in (None, spec.image) else "")
        + f"\n\n{markdown_cell(result.reason)}\n\n"
        + (f"{steps}\n\n" if steps else "") + (markdown_table(result.stages) if result.stages else ""),
        description="rollout summary",
    ))


def _run_canary(env: Environment, spec: RolloutSpec, approver: Approver, *, actor: str,
                finalize: bool) -> RolloutResult:
    log = get_run_logger()
    t = env.targets
    stable, canary = preflight(env, spec)
    image = pin_image(env, spec)
    pinned = f" (pinned as {image})" if image != spec.image else ""
    # Before the first write: a notice SNS refuses is a refusal the hooks leave alone, not a failure
    # whose hook set out to roll back a rollout that had changed nothing.
    # A notice whose answer was lost is sent once more, saying it may repeat it: a rollout is not
    # refused for one lost answer.
    with before_any_write(t):
        metrics.notify_or_repeat(
            env.notifier,
            f"Rollout starting: {t.canary_service}",
            f"{actor} started a canary of {spec.image}{pinned} on {t.cluster}: stages "
            f"{', '.join(f'{w}%' for w in spec.weights)}; {spec.analysis.judge} judge, "
            # Which stages will wait for a person, and that nobody answering rolls a healthy canary
            # back (by default): said up front, and again as each pause begins.
            f"automatic rollback on failure{approvals_asked(spec)}.",
        )
    # Its tries wait wall seconds: ECS's throttling is on the wall clock, whatever the rollout's.
    revision = undoable.deploy_revision(env.deployer, t.canary_service, image, stable.task_definition,
                                        canary.task_definition, lambda seconds: sleep_wall(env, seconds))
    log.info("canary service %s now on %s (%s)", t.canary_service, revision, image)

    # The canary flow keeps no ledger: its run is the rollout, and this id marks its flag writes
    # (its rollback's too).
    rollout = f"{CANARY_RUN_ROLLOUT}{new_rollout_id(env.clock.now())}"
    rollback = judge_rollback(env, spec, previous_task_definition=canary.task_definition, stable_desired=stable.desired,
                              rollout=rollout, pinned_image=image)
    result = run_stages(
        env, spec, state=StageState(), stable_desired=stable.desired, approver=approver, rollback=rollback,
        rollout=rollout, journal=StageTables(env, spec),
    ).model_copy(update={"pinned_image": image})
    if result.outcome != "promoted":
        return result
    watching = spec.monitor_seconds > 0
    # Sent as an alert is (logged if SNS refuses it): failing the run here had its hooks roll back
    # the release the notice was to announce, and skip the window that watches it.
    metrics.alert(
        env.notifier,
        f"Rollout complete: {t.canary_service}",
        f"{spec.image} now serves {result.final_weights.canary}% of traffic on {t.canary_service}. {result.reason}."
        + (f" Watching it for {duration_words(spec.monitor_seconds, given=True)} while {t.stable_service} keeps "
           f"running: a 5-minute error rate over {spec.guardrails.monitor_error_rate:.0%} rolls it back." if watching else ""),
        targets=t,
    )
    watched = None
    if watching:
        # The stable service still runs, so this is when a rollback is cheap. This flow keeps no
        # ledger (the window lives in this run, and its hooks roll back if it dies), and must not
        # write into a record another rollout of the service left.
        watched = run_monitor(
            replace(env, ledger=None), spec, window_seconds=spec.monitor_seconds, decommission=False,
            previous_task_definition=canary.task_definition, stable_desired=stable.desired, pinned_image=image,
        )
        result = after_window(result, watched)
    if finalize and result.outcome == "promoted":
        try:
            return finalize_in_run(env, spec, result, watched, actor=actor, revision=revision)
        except (FinalizeRefused, FinalizeIncomplete) as err:
            # The run fails with the promotion in place: its summary says so, and what to run,
            # as the summary of a run that ends does (run_canary makes it only on a return). The
            # error alone: it repeats an unverified window's reason, and the table shows the stages.
            _summary_artifact(env, spec, result.model_copy(update={"reason": f"Not finalized: {err}"}))
            raise
    return result


def finalize_in_run(env: Environment, spec: RolloutSpec, result: RolloutResult, watched: MonitorResult | None, *,
                    actor: str, revision: str) -> RolloutResult:
    """Finalize this run's promotion, its window passed: as the finalize flow does, without a
    ledger (this flow keeps none, and must not write into another rollout's record). Only
    ``revision``, the task definition this run deployed and judged, is moved onto the stable service.

    Raises:
        FinalizeRefused: the window could not be verified, AWS no longer shows this run's
            promotion, or a run of the `finalize` flow on the service has not ended (one started by
            hand meanwhile: two at once would each act); nothing was changed.
        FinalizeIncomplete: a step failed. Either way the promotion stands, the rollback hooks
            leave the run alone (a rollback would put the previous version back in production),
            and the message says to run ``rollway finalize --unrecorded``.
    """
    t = env.targets
    if watched is not None and not watched.verified:
        raise FinalizeRefused(
            f"{spec.image} was promoted, but its monitoring window was not verified ({watched.reason}), so it was "
            f"not finalized: {t.stable_service} keeps the previous version for a cheap rollback. Check the metrics, "
            f"then run {UNRECORDED_AGAIN} to finalize it, or roll it back with {UNRECORDED_ROLLBACK}. Nothing was "
            "changed"
        )
    try:
        # Marked before any finalize step: a crash or a cancellation of this attempt from here
        # on must not be rolled back by the hooks, since the promotion passed its window.
        mark_finalizing()
    except Exception as err:
        raise FinalizeRefused(
            f"{spec.image} was promoted and its window passed, but this run could not tag itself as finalizing on the "
            f"Prefect API ({passwords_hidden(str(err))}), so it did not finalize. Nothing was changed: run "
            f"{UNRECORDED_AGAIN}"
        ) from as_cause(err)
    try:
        # A finalize started by hand meanwhile (`rollway finalize --unrecorded`) refuses while this
        # run has not ended; this one refuses while that one has not: two at once would each move
        # the services and the traffic and tell people twice (nothing recorded, no lease).
        bounds = {"stable_timeout_seconds": 600.0, "healthy_timeout_seconds": 300.0, "verify_timeout_seconds": 30.0}
        done = run_finalize(replace(env, ledger=None), actor=actor, unrecorded=True, image=spec.image,
                            promoted=revision, pinned_image=result.pinned_image, **bounds,
                            finalize_runs=lambda: runs_within(FINALIZE_FLOW, t, bounds["verify_timeout_seconds"],
                                                              starting_within_seconds=sum(bounds.values()) + ROOM))
    except FinalizeRefused as err:
        raise FinalizeRefused(f"{spec.image} was promoted and its window passed, but finalize refused: {err}. "
                              f"Once that is resolved, run {UNRECORDED_AGAIN}") from err
    # SNS refused the "Finalized" notice: nothing records it owed (no ledger), so no run sends it again.
    # Dropped, the run read "finalized" and nobody was told; failed, its hooks would send a person
    # to a finalize that finds nothing to do. Said in the result and the log instead.
    said = finalized_said(done, t)
    if done.notice_refused is not None:
        get_run_logger().error("finalized: %s", said)
    return result.model_copy(update={"finalized": done, "reason": f"{result.reason}; finalized: {said}"})


@flow(name=CANARY_FLOW, log_prints=True, **rollback_hooks())
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def canary(
    spec: RolloutSpec,
    actor: Actor = "operator",
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    finalize: bool = False,
) -> RolloutResult:
    """Canary ``spec.image`` through ``spec.stages``; promote, hold for a person, or roll back.

    Every stage runs in this run: a spec with weekly phases (or a phase that decommissions) is
    refused before any AWS call; the progressive flow runs those.

    With ``finalize``, once the promotion's monitoring window (``spec.monitor_seconds``; 0: none)
    has passed, the stable service takes the promoted version and the traffic back, and the
    canary is scaled to 0, ready for the next release (nothing is recorded: this flow keeps no
    ledger). If that fails, the run fails with the promotion in place and is not rolled back; run
    `rollway finalize --unrecorded` to finish. Without it, finalize later the same way, before
    the next rollout.

    Args:
        spec: the rollout: image, stages, analysis, approvals and flags (one phase only).
        actor: who starts the canary (named in its notifications and its finalize).
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        clock: the rollout clock; leave it for a real rollout (speed 1), the simulator speeds it up.
        finalize: finalize the promotion after its monitoring window; off: later, by `rollway finalize --unrecorded`.
    """
    attempt_starts()  # a retry of this flow run starts over: its hooks must not see an earlier attempt's finalize
    refuse_phase_plan(spec)  # before the blocks and clients are loaded: nothing of AWS is touched
    session = load_session(targets_block, aws_credentials_block)
    env = pinning_in_any_region(session.environment(clock, interval_seconds=spec.analysis.interval_seconds),
                                session.credentials)
    return run_canary(env, spec, prefect_approver(spec.approvals), actor=actor, finalize=finalize)
