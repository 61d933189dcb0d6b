"""Serve every rollway flow as a deployment of one long-running process.

``python deployments/serve.py --targets-block rollway-targets --credentials-block rollway-embedded``
registers the deployments with the Prefect API named by ``PREFECT_API_URL`` and runs their
flow runs in subprocesses of this one, so runs triggered from the UI, the API
(``run_deployment``), ``rollway promote``/``abort`` or the weekly schedule execute here.
``rollway up`` and the integration tests start it exactly like that; ``prefect.yaml`` next
to this file describes the same deployments for a work pool instead.

The deployments' parameters default to the given block names and clock, so a run started
from the UI needs only its RolloutSpec.
"""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any, Sequence

from cyclopts import App
from pydantic import ValidationError

from flows.params import MAX_POLL_SECONDS, form_titled
from rollway.cli.blocks import DEPLOYMENT, deployment_path
from rollway.cli.weekly_schedule import WEEKLY_CRON, WEEKLY_TIMEZONE, weekly_schedule
from rollway.cli.whole import Whole
from rollway.clock import ClockSettings
from rollway.model import validation_problems
from rollway.spec import RolloutSpec
from rollway.validation import ValidationSpec

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment


# DESIGN.md: a runner looks for new runs every 10 s by default; a person who clicked "Run"
# (or a test waiting on it) should not wait that long.
DEFAULT_POLL_SECONDS = 2.0

TAGS = ("rollway",)


def build_deployments(
    *,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    clock: ClockSettings = ClockSettings(),
    approval_poll_seconds: int = 2,
    spec: RolloutSpec | None = None,
    validation: ValidationSpec | None = None,
    phased: bool = True,
    weekly_cron: str = WEEKLY_CRON,
    weekly_timezone: str = WEEKLY_TIMEZONE,
    schedules_active: bool = True,
    verify_after_deploy: bool = True,
) -> list["RunnerDeployment"]:
    """One deployment per rollway flow, parameters defaulting to the given blocks and clock.

    Args:
        targets_block: name of a saved RollwayTargets block (None: Webordinary's defaults).
        aws_credentials_block: name of a saved AwsCredentials block (None: boto3's chain).
        clock: rollout clock of every run; a faster clock must share its anchor with the
            metrics source (the simulator), so it is a parameter default, not a constant.
        approval_poll_seconds: how often a paused rollout checks for an answer.
        spec: a RolloutSpec to pre-fill in the canary and progressive_rollout forms
            (None: the form starts empty and the image must be typed in).
        validation: validate_deployment's ``spec`` default (None: the flow's own, Webordinary's
            real addresses); ``rollway up`` points it at its stand-in app on 127.0.0.1. Its
            ``canary_header``, when set, is deploy_infrastructure's and verify_infrastructure's too,
            and so is the spec itself (their ``validation_spec``: the checks' requests).
        phased: progressive_rollout's default: True stops at the end of each weekly phase
            (advance_phase starts the next), False runs every stage in one run.
        weekly_cron: when advance_phase runs.
        weekly_timezone: IANA time zone of ``weekly_cron``.
        schedules_active: False creates the weekly schedule paused.
        verify_after_deploy: deploy_infrastructure's ``verify`` default: False deploys without the
            checklist (verify_infrastructure runs it), and its description says so.

    Returns:
        RunnerDeployments for ``prefect.serve``: canary, progressive_rollout, advance_phase
        (weekly), monitor, rollback, finalize, set-flags, deploy_infrastructure, verify_infrastructure,
        publish_container, validate_deployment, rollout_report and cleanup.
    """
    # Imported here: `python deployments/serve.py --help` should not pay for Prefect and boto3.
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.canary import canary
    from flows.cleanup import cleanup
    from flows.container import publish_container
    from flows.finalize import finalize
    from flows.flags import set_flags
    from flows.infra import deploy_infrastructure, verify_infrastructure
    from flows.monitor import monitor
    from flows.progressive import advance_phase, progressive_rollout
    from flows.reports import rollout_report
    from flows.rollback import rollback
    from flows.validate import validate_deployment

    blocks: dict[str, Any] = {"targets_block": targets_block, "aws_credentials_block": aws_credentials_block}
    clocked = {**blocks, "clock": clock.model_dump(mode="json")}
    paused_flows = {**clocked, "approval_poll_seconds": approval_poll_seconds}
    if spec is not None and "weekly_timezone" not in spec.model_fields_set:
        # A rollout started from the form counts its weeks where advance_phase's cron fires.
        spec = spec.model_copy(update={"weekly_timezone": weekly_timezone})
    with_spec = {"spec": spec.model_dump(mode="json")} if spec is not None else {}
    # The canary flow runs every stage in one run, so its form leaves the weekly plan out (the
    # stages then run as one phase). Pre-filled with the plan, a form whose stages a person edited
    # was refused for the plan, then, the plan edited to match, for having weekly phases at all.
    canary_spec = {"spec": spec.model_dump(mode="json", exclude={"phases"})} if spec is not None else {}
    with_validation = {"spec": validation.model_dump(mode="json")} if validation is not None else {}
    # The infrastructure's checklist checks the listener rule that pins the validation's checks,
    # for the header they carry: set here, a deploy's checklist passed without the rule. It judges
    # that rule by the requests the checks send, from the same spec: given the header alone, it
    # judged by the weighted rule's requests and failed a pin on the checks' paths the validation takes.
    pinned = ({"canary_header": validation.canary_header, "validation_spec": validation.model_dump(mode="json")}
              if validation is not None and validation.canary_header is not None else {})

    def deploy(flow: Any, parameters: dict[str, Any], description: str, **extra: Any) -> "RunnerDeployment":
        deployment = flow.to_deployment(
            DEPLOYMENT,
            parameters=parameters,
            description=description,
            tags=list(TAGS),
            # The flows are an installed package: a module path loads them from any directory.
            entrypoint_type=EntrypointType.MODULE_PATH,
            **extra,
        )
        # Prefect labels each field of the run form with its parameter's name (aws_credentials_block).
        form_titled(deployment._parameter_openapi_schema.properties, deployment.flow_name)
        return deployment

    # deployments/prefect.yaml describes the same deployments for a work pool: the same
    # descriptions, schedule and parameters (tests/unit/test_cli_ops.py holds the two together).
    return [
        deploy(canary, {**clocked, **canary_spec},
               "Canary an image through the spec's stages in one run; promote, pause or roll back."),
        deploy(progressive_rollout, {**paused_flows, **with_spec, "phased": phased},
               "Start or resume the service's progressive rollout; runs the current weekly phase, "
               "pausing for approval where the spec says. The default plan's week 3 passes 75 % (a bake, as in the "
               "seed's stage list) before asking for 100 %; a spec without the 75 % stage opens week 3 at 100 % "
               "(README, Weekly phases)."),
        # The spec serves only its failure hook: the flags to disable when the ledger cannot be read.
        deploy(advance_phase, {**paused_flows, **with_spec},
               "Weekly: start the next phase of the running rollout once it is due on the rollout's calendar "
               "(weeks in its weekly_timezone; nothing twice in a week); resume a phase or monitoring window whose "
               "run died; finish a half-done rollback.",
               schedules=[Cron(weekly_cron, timezone=weekly_timezone, active=schedules_active)]),
        # The README has a person start it by hand (a window to watch again): the rollout flows run it
        # in their own runs, but from the UI it needs a deployment of its own.
        deploy(monitor, {**clocked, **with_spec},
               "Watch a promoted version for window_seconds: roll back on a 5-minute error rate over 5 %, then "
               "decommission the old service if the rollout's plan does. Refused, before any write, unless the "
               "service's newest rollout is a promoted rollout of spec.image; judges by that rollout's recorded "
               "guardrails and flags."),
        deploy(rollback, clocked,
               "Move all traffic back to the stable service and retire the canary (idempotent)."),
        deploy(finalize, clocked,
               "After a promotion: put the promoted version on the stable service, move the traffic back to it "
               "and scale the canary to 0, ready for the next rollout (idempotent)."),
        deploy(set_flags, blocks, "Set, enable or disable feature flags, recording who and why."),
        # One run at a time for the jobs that change the account outside the rollout: two cdk
        # deploys, two pushes of a version, or two cleanups at once would race each other.
        deploy(deploy_infrastructure, {**blocks, **pinned, **({} if verify_after_deploy else {"verify": False})},
               _infrastructure_description(verify_after_deploy, pinned.get("canary_header")), concurrency_limit=1),
        deploy(verify_infrastructure, {**blocks, **pinned},
               "Check the pre-deployment checklist (reads only): stacks, tables and indexes, queues and DLQs, "
               "dashboard, alarms and the alert topic's subscribers; with canary_header or validation_spec, the "
               "listener rule pinning validate_deployment's checks (judged by the requests they send, given "
               "validation_spec)."),
        deploy(publish_container, blocks,
               "Build the release image from context_dir, push <ECR repository>:<version> and :latest, and register "
               "a task-definition revision pinning the version by its digest (refuses a version already pushed).",
               concurrency_limit=1),
        deploy(validate_deployment, {**clocked, **with_validation},
               "After a deployment: the health check, a test session and message through the API, and the "
               "SuccessRate over the last minutes; fails naming every check that did not pass."),
        deploy(rollout_report, blocks,
               "A rollout's report from the ledger (the newest by default), and its incident report if it was "
               "rolled back. Read-only."),
        # Destructive: the form starts as a dry run, so a click shows the plan before anything goes.
        deploy(cleanup, {**blocks, "dry_run": True},
               "After the migration: archive the old code under a git tag, then delete old ECR image tags and "
               "old CloudFormation stacks; refuses live stacks, `latest` and images in use. Starts as a dry run: untick dry_run to delete.",
               concurrency_limit=1),
    ]


def _infrastructure_description(verify: bool, canary_header: str | None) -> str:
    """deploy_infrastructure's description, true of the deployment as its parameters make it: it
    said "then verify the pre-deployment checklist" of one whose verify was off."""
    if not verify:
        checklist = "without the pre-deployment checklist (verify is off: run verify_infrastructure for it)"
    elif canary_header is not None:
        # Served pinned, the deployment is given the validation's spec too (build_deployments).
        checklist = (f"then verify the pre-deployment checklist (the listener rule pinning validate_deployment's "
                     f"checks carrying `{canary_header}` too, judged by the requests they send)")
    else:
        checklist = ("then verify the pre-deployment checklist (with canary_header or validation_spec, the listener "
                     "rule pinning validate_deployment's checks too)")
    return (f"Deploy the CDK app's stacks in dependency order (one cdk deploy each), {checklist}; resume a failed "
            "run with from_stack.")


class RegistrationCut(RuntimeError):
    """The Prefect API was lost while ``serve_all`` registered the deployments, or served them.

    Attributes:
        registered: the deployments the API took (``<flow>/<deployment>``).
        in_flight: the one being registered when the API was lost: the API may have taken it
            (None: none, or none of its requests was sent).
        unregistered: the ones not registered (the one the API refused first, if it refused one).
        error: the httpx error that cut it off: a TransportError, or the HTTPStatusError of a refusal.
    """

    def __init__(self, registered: Sequence[str], in_flight: str | None, unregistered: Sequence[str],
                 error: Exception) -> None:
        self.registered, self.in_flight, self.unregistered = tuple(registered), in_flight, tuple(unregistered)
        self.error = error
        super().__init__(_refusal(error) if _status(error) else f"{type(error).__name__}: {error}")


def _status(error: Exception) -> int | None:
    """The HTTP status the API answered ``error`` with (None: it did not answer)."""
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def _refusal(error: Any) -> str:
    """``HTTP 401 Unauthorized: <what the server said>``: Prefect's own text ran to a URL of Mozilla's docs."""
    response = error.response
    try:
        said = response.json().get("exception_message") or response.json().get("detail")
    except (ValueError, AttributeError):
        said = None
    said = " ".join(str(said or response.text or "").split())[:300]
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {said}" if said else "")


def serve_all(
    deployments: Sequence["RunnerDeployment"],
    *,
    limit: int | None = 10,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
) -> None:
    """Register ``deployments`` and execute their runs until interrupted (blocks).

    ``prefect.serve`` itself, but registering the deployments one by one here, so that a
    connection lost part way says which ones the API has.

    Args:
        deployments: from ``build_deployments``.
        limit: most flow runs executing at once.
        poll_seconds: how often the runner asks the API for runs to start.

    Raises:
        RegistrationCut: the Prefect API was lost (an httpx TransportError), naming the
            deployments registered by then and those not.
    """
    import asyncio

    import httpx
    from prefect.exceptions import TerminationSignal
    from prefect.runner import Runner

    # Prefect's runner pauses every deployment it served when it stops, and pausing deletes the
    # scheduled runs: a serve process restarted (an upgrade, a reboot) across Monday 09:00 lost
    # that advance_phase run, and the rollout a week. Left active, the run waits as Late and the
    # runner starts it when it is back; the weekly calendar then decides as at the cron.
    runner = Runner(pause_on_shutdown=False, limit=limit, query_seconds=poll_seconds)
    names = [deployment_path(d.flow_name) for d in deployments]
    try:
        kept = keep_pauses(deployments)
    except (httpx.HTTPStatusError, httpx.TransportError) as err:  # before anything was registered
        raise RegistrationCut((), None, names, err) from err
    for line in kept:
        print(line, flush=True)
    for done, deployment in enumerate(deployments):
        try:
            runner.add_deployment(deployment)
        except httpx.HTTPStatusError as err:
            raise RegistrationCut(names[:done], None, names[done:], err) from err
        except httpx.TransportError as err:
            # Not connected, the request was never sent; otherwise its answer alone may be lost.
            # Once the API has answered, Prefect's client retries a lost answer (ReadError) and a
            # refused connection alike, so a last ConnectError may follow a request it took.
            sent = done > 0 or not isinstance(err, (httpx.ConnectError, httpx.ConnectTimeout))
            raise RegistrationCut(names[:done], names[done] if sent else None, names[done + 1 if sent else done:],
                                  err) from err
    print(f"serving {len(names)} deployments ({', '.join(names)}); Ctrl-C stops", flush=True)
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        print("stopped serving", flush=True)
    except httpx.TransportError as err:
        raise RegistrationCut(names, None, (), err) from err


def keep_pauses(deployments: Sequence["RunnerDeployment"]) -> list[str]:
    """Register each of ``deployments`` paused where a person paused it on the Prefect API: the
    deployment, or every schedule it has. One line for each pause kept.

    Registering a deployment again makes it as it is given: unpaused, its schedules as built
    (active). A person who paused advance_phase's weekly schedule in the UI to hold the rollout
    at its phase had it active again once serve.py restarted (a reboot, an upgrade), and the next
    Monday's run moved the traffic on. Only a person resumes what a person paused.

    Raises:
        httpx.HTTPStatusError, httpx.TransportError: the API refused a read, or was not reached.
    """
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    said: list[str] = []
    with get_client(sync_client=True) as client:
        for deployment in deployments:
            path = deployment_path(deployment.flow_name)
            try:
                served = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            except ObjectNotFound:
                continue  # a first registration: as built
            if served.paused and not deployment.paused:
                deployment.paused = True
                said.append(f"{path}: the deployment stays paused, as it was paused on the Prefect API: no run of it "
                            "starts on a schedule until someone resumes it there (the UI: Deployments)")
            if served.schedules and not any(s.active for s in served.schedules) and any(
                    s.active for s in deployment.schedules):
                for schedule in deployment.schedules:
                    schedule.active = False
                said.append(f"{path}: its weekly schedule stays paused, as it was paused on the Prefect API: it starts "
                            "no run until someone turns it on there (the UI: Deployments, the deployment's schedule)")
            if (edited := schedule_edited(path, served.schedules, deployment.schedules)) is not None:
                said.append(edited)
    return said


def _crons(schedules: Sequence[Any] | None) -> list[tuple[str, str]]:
    """The (cron, time zone) of each cron schedule among ``schedules`` (a deployment's, served or built)."""
    return [(s.schedule.cron, s.schedule.timezone or "UTC") for s in schedules or ()
            if getattr(s.schedule, "cron", None)]


def _not_crons(schedules: Sequence[Any] | None) -> list[str]:
    """The schedules among ``schedules`` (a deployment's on the API) that are not cron ones, said:
    the UI's editor sets an interval too, and an RRule, which no --weekly-cron registers."""
    said = []
    for served in schedules or ():
        schedule = served.schedule
        if getattr(schedule, "cron", None):
            continue
        zone = getattr(schedule, "timezone", None) or "UTC"
        if getattr(schedule, "interval", None) is not None:
            said.append(f"every {schedule.interval} from {schedule.anchor_date.isoformat()} ({zone})")
        elif getattr(schedule, "rrule", None):
            said.append(f"the RRule {schedule.rrule!r} in {zone}")
        else:
            said.append(f"a {type(schedule).__name__}")
    return said


def schedule_edited(path: str, served: Sequence[Any] | None, built: Sequence[Any] | None) -> str | None:
    """What registering ``built`` schedules over ``served`` ones (changed in the UI, say) undoes: a
    line naming both and how to keep the served one; None when they are the same.

    Registering a deployment again sets its schedules as serve.py's options say: a person who moved
    the weekly schedule in the UI (to the zone the rollout's weeks are counted in) had it put back by
    the next restart without a word, and the Monday phases and their approvals came at another hour.
    """
    was, now = _crons(served), _crons(built)
    # An interval or RRule set in the UI was replaced by the cron without a word: only crons were compared.
    other = _not_crons(served)
    if not other and (not was or sorted(was) == sorted(now)):
        return None
    def words(crons: list[tuple[str, str]], more: Sequence[str] = ()) -> str:
        return " and ".join([*(f"{cron!r} in {zone}" for cron, zone in crons), *more]) or "no schedule"
    if not now:
        # Only advance_phase's is registered: the weekly options would move its schedule, not keep this one.
        return (f"{path}: its schedule was {words(was, other)} on the Prefect API, and serve.py (or `rollway up`) "
                "registers it with none: add it again in the UI after it starts")
    # One option pair a schedule: naming the first alone, of several edited in, sent a person to
    # keep that one as if it were all the API held.
    options = ", or ".join(f"--weekly-cron {cron!r} --weekly-timezone {zone}" for cron, zone in was)
    if not was:
        keep = (f"serve.py and `rollway up` register a cron schedule only: to keep the times of "
                f"{'the one' if len(other) == 1 else 'one of those'} on the API, start serve.py (or `rollway up`) "
                "with the --weekly-cron and --weekly-timezone that fire at them")
    elif len(was) == 1 and not other:
        keep = f"to keep the one on the API, start serve.py (or `rollway up`) with {options}"
    else:
        keep = (f"serve.py and `rollway up` register one weekly schedule: to keep one of the {len(was) + len(other)} "
                f"on the API, start serve.py (or `rollway up`) with {options}, and add the others again in the UI "
                "after it starts")
    return (f"{path}: its weekly schedule was {words(was, other)} on the Prefect API, and is registered again as "
            f"{words(now)} "
            f"(the --weekly-cron / --weekly-timezone of serve.py, or of `rollway up`); {keep} (a rollout keeps "
            "the weekly_timezone it was started with, and each advance_phase run warns when its schedule's zone is "
            "another)")


def unreachable(api_url: str, cut: RegistrationCut) -> str:
    """What a Prefect API lost while serving (``cut``) left registered, and what to do: one line.

    Before any deployment was sent it is a server not started or a wrong address. Part way, the
    deployments registered stay on the API, the weekly schedule active, with no runner to take
    their runs; which ones were, and which were not, is what a person re-running needs to know.
    """
    status = _status(cut.error)
    if status is not None:
        registered = (f"registered: {', '.join(cut.registered)}; not registered: {', '.join(cut.unregistered)}"
                      if cut.registered else "nothing was registered")
        fix = ("the server asks for credentials: set PREFECT_API_AUTH_STRING (its basic auth) or PREFECT_API_KEY as it "
               "is set up" if status in (401, 403) else "see the Prefect server's log for why")
        return (f"the Prefect API at {api_url} refused to register {cut.unregistered[0]} ({cut}): {registered}; {fix}, "
                "then run serve.py again, which registers every deployment (one registered already is updated, not "
                "doubled)")
    if not cut.registered and cut.in_flight is None:
        return (f"the Prefect API at {api_url} could not be reached ({cut}): start it (`prefect server start`, "
                "`rollway up`) or correct PREFECT_API_URL, then run again")
    if not cut.unregistered and cut.in_flight is None:
        return (f"the Prefect API at {api_url} was lost while serving the deployments ({cut}): every deployment is "
                "registered, but no runner takes their runs now; run serve.py again once the API answers")
    parts = [f"registered: {', '.join(cut.registered) or 'none'}"]
    if cut.in_flight is not None:
        parts.append(f"perhaps registered (the API was lost while registering it): {cut.in_flight}")
    if cut.unregistered:
        parts.append(f"not registered: {', '.join(cut.unregistered)}")
    return (f"the Prefect API at {api_url} was lost while registering the deployments ({cut}): {'; '.join(parts)}; "
            "no runner takes the registered ones' runs: run serve.py again once the API answers, which registers "
            "every deployment (one registered already is updated, not doubled)")


def validation_spec(url: str) -> ValidationSpec:
    """validate_deployment's checks against the app at ``url``: its ``/health`` and its sessions API.

    Raises:
        ValueError: naming --validation-url and the rule it breaks.
    """
    try:
        return ValidationSpec(health_url=url.rstrip("/") + "/health", api_base_url=url)
    except ValueError as err:
        reasons = "; ".join(e["msg"] for e in getattr(err, "errors", lambda: [])()) or str(err)
        raise ValueError(f"--validation-url is not a usable base URL: {reasons}") from None


def _problems(err: ValueError, whole: str) -> str:
    """A refused option's problems on the one ``error:`` line: pydantic's own rendering took four
    lines a problem (a count, the field, the message, a web address)."""
    return validation_problems(err, whole) if isinstance(err, ValidationError) else str(err)


def _checked(*, speed: float, anchor: float | None, approval_poll_seconds: int, poll_seconds: float, limit: int,
             spec_json: str | None) -> tuple[ClockSettings, RolloutSpec | None]:
    """The clock and the spec the options give, or a ValueError naming the bad option."""
    try:
        clock = ClockSettings(speed=speed, anchor=anchor)  # a fast clock needs its anchor
    except ValueError as err:
        raise ValueError(f"--speed {speed:g} / --anchor {anchor}: {_problems(err, 'clock')}") from None
    # The flows' own bound (flows/params.py): a deployment default outside it fails every run.
    if not 0 < approval_poll_seconds <= MAX_POLL_SECONDS:
        raise ValueError(f"--approval-poll-seconds {approval_poll_seconds}: must be 1..{MAX_POLL_SECONDS} (an answer "
                         "or a Cancel is seen only at a look)")
    # A look an hour or more apart (1e12 was taken) left every run started from the UI or a schedule
    # waiting as long to start, and a Cancel unseen: at most as long as a paused run's look.
    if not (math.isfinite(poll_seconds) and 0 < poll_seconds <= MAX_POLL_SECONDS):
        raise ValueError(f"--poll-seconds {poll_seconds:g}: must be a positive number of seconds, at most "
                         f"{MAX_POLL_SECONDS} (a run waits until the next look to start)")
    if limit < 1:
        raise ValueError(f"--limit {limit}: at least one run must be able to execute")
    if not spec_json:
        return clock, None
    try:
        return clock, RolloutSpec.model_validate_json(spec_json)
    except ValueError as err:
        raise ValueError(f"--spec-json is not a usable RolloutSpec: {_problems(err, 'spec')}") from None


def _unsaved_blocks(targets_block: str | None, credentials_block: str | None) -> str | None:
    """Why a block name given is no saved block's, or None (saved, not given, or the saved names
    could not be read: the runs then say what they meet).

    Registered as every deployment's default, a misspelt name failed each run started from the UI
    or the weekly schedule as it loaded the block, a week's phase with it."""
    from blocks.saved import unsaved_block

    for name, block_type, option in ((targets_block, "rollway-targets", "--targets-block"),
                                     (credentials_block, "aws-credentials", "--credentials-block")):
        unsaved = unsaved_block(name, block_type, option)
        if unsaved is not None:
            return f"{unsaved}; nothing was registered"
    return None


def prefilled_zone_disagrees(spec: RolloutSpec, cron: str, timezone: str) -> str | None:
    """Why a pre-filled spec that names its own ``weekly_timezone`` cannot be served beside the
    weekly schedule in ``timezone``; None when the two zones keep the same clocks (or the spec
    names none: it is given the cron's zone).

    Served, every rollout started from the form recorded the spec's zone, and every Monday's
    advance_phase run then started its phase at another hour of that zone's day (or a week late).
    """
    import time

    if "weekly_timezone" not in spec.model_fields_set:
        return None
    from flows.progressive import schedule_fires
    from rollway.weekly import schedule_disagrees

    said = schedule_disagrees(cron, timezone, spec.weekly_timezone, schedule_fires(cron, timezone, time.time()))
    if said is None:
        return None
    return (f"--spec-json's weekly_timezone {spec.weekly_timezone} is not --weekly-timezone {timezone}: {said}. Give "
            f"both one zone: --weekly-timezone {spec.weekly_timezone}, or leave weekly_timezone out of the spec "
            "(serve.py fills in the schedule's); nothing was registered")


cli = App(name="serve.py", help="Serve every rollway flow as a deployment (Ctrl-C stops).")


@cli.default
def main(
    *,
    targets_block: str | None = None,
    credentials_block: str | None = None,
    speed: float = 1.0,
    anchor: float | None = None,
    approval_poll_seconds: Whole = 2,
    spec_json: str | None = None,
    validation_url: str | None = None,
    phased: bool = True,
    poll_seconds: float = DEFAULT_POLL_SECONDS,
    limit: Whole = 10,
    paused_schedules: bool = False,
    weekly_cron: str = WEEKLY_CRON,
    weekly_timezone: str = WEEKLY_TIMEZONE,
    verify_after_deploy: bool = True,
) -> None:
    """Serve the deployments against the API in PREFECT_API_URL.

    Args:
        targets_block: saved RollwayTargets block the runs default to.
        credentials_block: saved AwsCredentials block the runs default to.
        speed: rollout clock the runs default to: simulated seconds per wall second.
        anchor: wall-clock epoch where the scaled clock starts, shared with the metric
            source (needed when speed != 1).
        approval_poll_seconds: how often a paused run checks for an answer.
        spec_json: a RolloutSpec (JSON) to pre-fill in the run forms.
        validation_url: base URL of the app validate_deployment checks by default (``/health``
            and the sessions API under it); none: Webordinary's real addresses.
        phased: progressive_rollout stops at the end of each weekly phase by default.
        poll_seconds: how often the runner looks for new runs.
        limit: most runs at once.
        paused_schedules: create the weekly schedule paused.
        weekly_cron: when advance_phase starts the next weekly phase (default Mondays 09:00).
        weekly_timezone: IANA time zone of the weekly cron, and of the weeks a pre-filled spec
            that names no zone counts.
        verify_after_deploy: deploy_infrastructure runs the pre-deployment checklist after its
            deploys by default; --no-verify-after-deploy registers it without (its verify off),
            for an account whose checklist is run with verify_infrastructure instead.
    """
    # Every option is checked before anything is registered: a bad one is a usage error, not a
    # traceback, and never a default that every deployment's runs would fail on.
    try:
        clock, spec = _checked(speed=speed, anchor=anchor, approval_poll_seconds=approval_poll_seconds,
                               poll_seconds=poll_seconds, limit=limit, spec_json=spec_json)
        validation = validation_spec(validation_url) if validation_url is not None else None
        weekly_cron, weekly_timezone = weekly_schedule(weekly_cron, weekly_timezone)
        if spec is not None and (mismatch := prefilled_zone_disagrees(spec, weekly_cron, weekly_timezone)):
            raise ValueError(mismatch)
    except ValueError as err:  # pydantic's ValidationError and json's JSONDecodeError are ValueErrors
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Without it Prefect serves on a temporary server of its own, which no UI, worker or
        # `rollway` command reaches and which goes with this process: it said the deployments were
        # served, and nobody could ever start a run of them.
        print("error: PREFECT_API_URL is not set: serve.py registers the deployments on your Prefect server; "
              "export PREFECT_API_URL=<its API address> (http://127.0.0.1:4200/api for a local "
              "`prefect server start`), or set it in your Prefect profile; nothing was registered", file=sys.stderr)
        raise SystemExit(1)
    unsaved = _unsaved_blocks(targets_block, credentials_block)
    if unsaved is not None:
        print(f"error: {unsaved}", file=sys.stderr)
        raise SystemExit(2)
    deployments = build_deployments(
        targets_block=targets_block,
        aws_credentials_block=credentials_block,
        clock=clock,
        approval_poll_seconds=approval_poll_seconds,
        spec=spec,
        validation=validation,
        phased=phased,
        weekly_cron=weekly_cron,
        weekly_timezone=weekly_timezone,
        schedules_active=not paused_schedules,
        verify_after_deploy=verify_after_deploy,
    )
    try:
        serve_all(deployments, limit=limit, poll_seconds=poll_seconds)
    except RegistrationCut as cut:
        # A server not started yet, a wrong port, or one lost part way: httpx's traceback ran a hundred lines.
        from rollway.url_passwords import passwords_hidden

        # The address as a person sees it: a server behind basic auth is reached with its password in it.
        print(f"error: {passwords_hidden(unreachable(PREFECT_API_URL.value(), cut))}", file=sys.stderr)
        raise SystemExit(1) from None


def run(argv: Sequence[str]) -> None:
    """``python deployments/serve.py ARGS``: a command line that does not parse is refused on one
    ``error:`` line (exit code 2), as the ``rollway`` commands refuse theirs."""
    from cyclopts import CycloptsError

    from rollway.cli import refuse_usage

    try:
        cli(list(argv), print_error=False, exit_on_error=False)
    except CycloptsError as err:
        raise SystemExit(refuse_usage(err, "python deployments/serve.py")) from None


if __name__ == "__main__":
    run(sys.argv[1:])
