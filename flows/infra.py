"""infra: deploy the CDK stacks in dependency order, then verify the pre-deployment checklist.

The seed's "Step 1: Deploy Infrastructure" as one run, in order:

1. validate every parameter (Prefect checks the types; the body checks the app directory, the
   cdk executable and the stack names), load the blocks, read the account id, and synthesize
   the app once to list its stacks and their dependencies: all before the first deploy;
2. plan (``rollway.infra.plan_deployment``): refuse unknown stacks, a dependency left out of
   the plan, a cycle; order by dependencies, the order asked for breaking ties; with
   ``from_stack``, the stacks before it count as deployed by an earlier run once CloudFormation
   shows them deployed (``confirm_skipped``): one that does not exist, was rolled back or
   deleted is deployed too, in dependency order, and the log and artifact say why; a stack to
   deploy that CloudFormation is still changing (``*_IN_PROGRESS``) refuses the run, and so does one it
   takes no deploy of until someone acts (``rollway.infra.check_not_stuck``), naming the command that frees it;
   so does the CDK toolkit stack (``CDKToolkit``, or the cdk.json's ``toolkitStackName``) of an environment
   of this account the stacks go to, when it is missing (and the run does not bootstrap it), still changing
   or stuck (``rollway.infra.check_toolkits``), naming the environment and ``cdk bootstrap``;
3. with ``bootstrap``, ``cdk bootstrap`` of every distinct region of the deploying account the
   stacks to deploy go to (their manifest's environments, checked before anything runs; an
   environment-agnostic stack goes to the deploying account and ``Targets.region``), each once,
   only once the plan stands, a failure naming the environment. An environment of another
   account is not bootstrapped: the run's credentials cannot (cdk refuses them there), and it
   must trust the deploying account anyway, which only its own credentials can grant; the log
   and the artifact give the ``cdk bootstrap --trust`` to run there. Then deploy one stack per
   task (``cdk deploy <Stack> --require-approval never --exclusively``), logging cdk's lines as
   they come, and once they are done, which were up to date (CloudFormation's reads before and
   after, cdk's ``(no changes)`` only where one is missing, said which); on a failure stop at once, saying what was deployed, what failed (cdk's last
   lines) and how to resume; a later stack is never deployed;
4. the pre-deployment checklist (stacks, tables and indexes, queues and DLQs, dashboard, alarms
   and the alert topic), failing the run with the list of failed items; each stack is read in
   the region its manifest gives (``Targets.region`` for an environment-agnostic one), each
   table, queue, dashboard, alarm and the topic in the region of the stack whose synthesized
   template names it (``Targets.region`` when none does), the item's reason saying where when
   that is not ``Targets.region``; one in another account fails its item as not readable with
   the run's credentials. Rollway's own tables and the alert topic are read in
   ``Targets.region``, where rollway uses them, and fail when the app deploys them elsewhere;
5. a markdown artifact with the stacks and the checklist, also when the run fails; the
   checklist's verdict also under ``verify_infrastructure``'s key, whose newest is then always
   the newest checklist read, by either flow (a checklist interrupted, or one that could not run,
   its reader refused or failing, says there that nothing was checked, as verify's does; so does a
   deploy stopped at a stack, failed or interrupted, or run with ``verify`` off, naming the stacks
   it changed since that verdict: those CloudFormation shows changed between a read before the
   first deploy and one after, a stack not read said not known to have changed; one that changed none leaves
   the key alone).

``verify_infrastructure`` runs step 4 alone (reads only): cheap to run from the UI. Given
``cdk_app_dir`` it synthesizes the app first to learn where each stack and what it defines goes;
without it everything is read in ``Targets.region``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from prefect import flow, get_run_logger
from prefect_aws import AwsCredentials
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from blocks.credentials import assumed_role_session, credentials_named
from flows.artifacts import create_markdown_artifact, for_people
from flows.env import load_credentials, load_targets, run_logger, session_clients, session_in_region
from flows.params import ReadSeconds, StackName, WaitSeconds
from rollway.aws.checklist import AwsInfraChecker
from rollway.aws.denied import INFRASTRUCTURE_POLICY, refusal_said
from rollway.aws.errors import aws_message, credentials_remedy
from rollway.checklist import Checklist, checked_resources, unnamed_resources
from rollway.deadline import READ_SECONDS, Unanswered, answered, read_bound
from rollway.errors_pickle import PicklableError
from rollway.failure_words import error_said, failures_writable
from rollway.aws.cloudformation import CloudFormationStacks
from rollway.cleanup import StackState
from rollway.infra import (
    AddedBack, AppStacks, DeployedStack, DeploymentPlan, PlanRefused, ResourcePlace, StackDeployFailed,
    StackEnvironment,
    bootstrap_environments, changed_stacks, changing, check_already_deployed, check_not_changing, check_not_stuck, check_request,
    check_toolkits,
    confirm_skipped,
    plan_deployment, recreated,
    resource_places, stack_environments, stuck_remedy, trust_command,
)
from rollway.ports import InfraChecker, InfraDeployer, StackStatuses
from rollway.pinning import CheckRequest, header_line
from rollway.report import markdown_cell
from rollway.targets import Targets
from rollway.toolchain.cdk import CdkCli, CdkEnvironment, app_settings_problem, check_cdk_executable
from rollway.toolchain.process import resolve
from rollway.validation import ValidationSpec, check_requests
from tasks import infra as tasks

ARTIFACT_KEY = "infra-deployment"
CHECKLIST_ARTIFACT_KEY = "infra-checklist"
_TAIL_SHOWN = 15  # cdk's last lines in a failure's message: where it says why


class InfraRefused(ValueError):
    """The run's parameters cannot be acted on; nothing was deployed."""


class InfraDeployFailed(RuntimeError):
    """A stack failed to deploy; the run stopped there. The message says what was deployed,
    what failed and how to resume."""


class AwsNotRead(RuntimeError):
    """AWS could not be read before the first deploy (the account, the stacks' statuses); nothing
    was deployed. The message says what was read, and AWS's error code and message."""


class ChecklistFailed(PicklableError, RuntimeError):
    """The stacks are deployed (or were not asked to be), but checklist items failed."""

    def __init__(self, checklist: Checklist, after: str = "") -> None:
        self.checklist = checklist
        # What comes next: after a deploy, a person re-ran the whole deploy to see the checklist again.
        then = f"\n{after}" if after else ""
        super().__init__(f"{len(checklist.failed)} of {len(checklist.items)} pre-deployment checklist items "
                         f"failed:\n{checklist.summary()}{then}")


class StackReport(BaseModel):
    """What became of one stack of the plan in this run."""

    model_config = ConfigDict(frozen=True)

    stack: str
    status: Literal["deployed", "skipped", "failed", "interrupted", "not deployed"]
    seconds: float | None = None
    detail: str = ""


class InfraResult(BaseModel):
    """The stacks of the run and the checklist (None when not verified)."""

    model_config = ConfigDict(frozen=True)

    stacks: tuple[StackReport, ...]
    checklist: Checklist | None = None
    reordered: bool = False
    added: tuple[AddedBack, ...] = ()
    bootstrap_elsewhere: tuple[str, ...] = Field(default=(), description=(
        "for each environment of another account the stacks go to, which this run did not bootstrap: the cdk "
        "bootstrap to run there with that account's credentials, trusting this one"))


def run_deploy_infrastructure(
    deployer: InfraDeployer,
    checker: Callable[[AppStacks], InfraChecker] | None,
    requested: Sequence[str],
    *,
    from_stack: str | None = None,
    already_deployed: Sequence[str] = (),
    stack_timeout_seconds: float = 1800.0,
    home: StackEnvironment | None = None,
    bootstrap: Callable[[StackEnvironment, str], None] | None = None,
    statuses: Callable[[str], StackStatuses] | None = None,
    read_seconds: float = READ_SECONDS,
) -> InfraResult:
    """Plan, deploy stack by stack, then check; see the module docstring for the order.

    Args:
        deployer: the app's stacks and how to deploy one.
        checker: makes the checklist's reader from the app's stacks (so it reads each stack where
            the app deploys it), called once the plan stands and before anything is deployed, so
            what it refuses is refused before any deploy; None skips the checklist.
        requested: the stacks to deploy, in the order asked for.
        from_stack: resume at this stack; the ones planned before it count as deployed.
        already_deployed: stacks outside the plan that are deployed (plan stacks may depend on them).
        stack_timeout_seconds: how long one stack's deploy may take.
        home: the account deployed to and ``Targets.region``: where an environment-agnostic stack
            goes (the stacks' environments are checked before anything runs); needed with
            ``bootstrap`` or ``statuses``.
        bootstrap: ``cdk bootstrap`` of one environment (and the progress prefix of its lines),
            called once per distinct environment of the stacks to deploy in ``home``'s account,
            once the plan stands and before the first deploy, so a refused plan writes nothing.
        statuses: region -> a reader of the CloudFormation status of the stacks before
            ``from_stack`` there: those not deployed are deployed after all (``confirm_skipped``);
            and of the ``already_deployed`` stacks, refused when nothing of them is deployed.
            None counts them as deployed unread.
        read_seconds: how long one region's statuses may take to read (``AwsNotRead`` after).

    Raises:
        ValueError: ``read_seconds`` is not a read's bound, before anything is read.
        PlanRefused: before any deploy (and before any bootstrap), also for an ``already_deployed``
            stack CloudFormation shows with nothing deployed.
        AwsNotRead: those statuses could not be read; nothing was deployed.
        InfraDeployFailed: a stack failed; later stacks were not deployed.
        ChecklistFailed: every stack deployed, checklist items failed.
    """
    read_bound(read_seconds)
    log = get_run_logger()
    # Refused (or failed) before anything is written: said in the artifact too (_refused_before_any_deploy).
    with _said_if_refused(requested, from_stack, already_deployed):
        # Cancelled from the UI or Ctrl-C while cdk synthesized (minutes for an app bundling its
        # assets): cdk is stopped. Such a run ended with no word, and the key's newest artifact was
        # still an earlier run's "deployed". (A failure, AppNotListed, says why itself.)
        with _said_if_interrupted(lambda: _interrupted_synth(requested, from_stack, already_deployed)):
            app = tasks.list_stacks(deployer)
        log.info("the CDK app defines %d stack(s): %s", len(app.names), ", ".join(app.names))
        plan = plan_deployment(requested, app, from_stack=from_stack, already_deployed=already_deployed)
        if plan.reordered:
            log.warning("stacks reordered by their dependencies: %s (asked: %s)", " -> ".join(plan.order),
                        " -> ".join(requested))
        if (bootstrap is not None or statuses is not None) and home is None:
            raise ValueError("bootstrap and statuses need home: the account and region of environment-agnostic stacks")
        # Every stack's environment checked (a malformed region in the app) before anything acts on it.
        environments = stack_environments(app, plan.order, home) if home is not None else {}
        # Made now, not after the deploys: what it refuses (a checked stack's malformed environment)
        # is refused before anything is written.
        try:
            reader = checker(app) if checker is not None else None
        except Exception as err:
            # _said_if_refused writes the deployment's artifact; the checklist key's newest was
            # otherwise an earlier run's "passed", read as this run's verdict.
            _checklist_not_checked(err, "(and nothing was deployed: the run stopped before its first deploy)",
                                   "run `deploy_infrastructure` again")
            raise
        seen: dict[str, str | None] = {}
        named_there: set[StackEnvironment] = set()  # where a stack named already deployed exists
        if plan.skipped and statuses is not None:
            # Counted as deployed only if CloudFormation says so: the app may have gained a stack
            # ordered before from_stack since the run that failed, which no run ever deployed.
            assert home is not None
            with _said_if_interrupted(lambda: _interrupted_reading(plan, plan.skipped, from_stack, already_deployed)):
                seen = _read_statuses(statuses, plan.skipped, environments, home, read_seconds)
            plan = confirm_skipped(plan, seen)
            for added in plan.added:
                log.warning("resuming at %s: %s is deployed too, though ordered before it: %s", from_stack, added.stack,
                            added.reason)
        if already_deployed and statuses is not None:
            # Taken at their word, a stack named by mistake (deleted, never created) reached cdk and
            # failed a dependent's deploy on a missing export; checked now, before anything is written.
            assert home is not None
            with _said_if_interrupted(
                    lambda: _interrupted_reading(plan, already_deployed, from_stack, already_deployed)):
                read = _read_statuses(statuses, already_deployed, stack_environments(app, already_deployed, home), home,
                                      read_seconds,
                                      unread="it is taken as already deployed, as named",
                                      why="to check the stacks named as already deployed")
            check_already_deployed(read)
            named = stack_environments(app, already_deployed, home)
            named_there = {named[stack] for stack, status in read.items() if status not in (None, "DELETE_COMPLETE")}
        # Read before any deploy, and again once the run stops or ends unchecked: which stacks it
        # changed. Counted changed unread, a stack whose cdk deploy failed before CloudFormation
        # started made the checklist's key say an earlier verdict no longer held of it. A stack
        # CloudFormation is still changing (a deploy stopped at its timeout) is refused here.
        before: dict[str, StackState] = {}
        if statuses is not None:
            assert home is not None
            # A stack whose events could not be read (a policy granting DescribeStackEvents on some
            # stacks only) is not known to have changed, but its status still stops the run: left
            # out, cdk ran the stacks before it and then failed on one CloudFormation takes no update of.
            judged: dict[str, StackState] = {}
            with _said_if_interrupted(
                    lambda: _interrupted_reading(plan, plan.to_deploy, from_stack, already_deployed)):
                before = _read_states(statuses, plan.to_deploy, environments, home, read_seconds, status_only=judged)
            judged.update(before)
            # The toolkit stack of every environment the deploys (or bootstraps) go to, read now: missing or
            # half-deleted, cdk said so only at the first stack going there, after those before it were deployed.
            needed_by, bootstrapping = _toolkit_environments(app, plan.to_deploy, environments, home,
                                                             bootstrap is not None)
            with _said_if_interrupted(
                    lambda: _interrupted_reading(plan, [app.toolkit_stack], from_stack, already_deployed)):
                toolkits, versions = _read_toolkits(statuses, app.toolkit_stack, [*needed_by, *bootstrapping],
                                                    read_seconds)
            # Every one of them named at once: refused for the first found, a person waited or acted, ran again
            # (the synth again, minutes) and was refused for the next.
            _refused_together(
                lambda: check_not_changing({stack: state.status for stack, state in judged.items()}),
                lambda: check_not_stuck({stack: state.status for stack, state in judged.items()},
                                        {stack: environments[stack].region for stack in judged},
                                        reasons={stack: state.status_reason for stack, state in judged.items()}),
                lambda: check_toolkits(toolkits, needed_by, name=app.toolkit_stack, bootstrapping=bootstrapping,
                                       versions=versions,
                                       required={environment: max(app.bootstrap_versions[s] for s in stacks)
                                                 for environment, stacks in needed_by.items()}))
            for line in recreated(judged, {stack: environments[stack].region for stack in judged}):
                log.warning("%s", line)
            _say_created(judged, environments, named_there | {
                environments[stack] for stack, status in seen.items() if status not in (None, "DELETE_COMPLETE")})
    if plan.skipped:
        log.info("resuming at %s: %s counted as deployed by an earlier run", from_stack, ", ".join(plan.skipped))
    reports: dict[str, StackReport] = {s: StackReport(stack=s, status="not deployed") for s in plan.order}
    for s in plan.skipped:
        shown = f" ({seen[s]})" if seen.get(s) else ""
        reports[s] = StackReport(stack=s, status="skipped", detail=f"before from_stack: deployed by an earlier run{shown}")
    for added in plan.added:
        reports[added.stack] = StackReport(stack=added.stack, status="not deployed",
                                           detail=f"before from_stack, deployed all the same: {added.reason}")
    elsewhere: tuple[str, ...] = ()

    def standing() -> InfraResult:
        """The run's result as its stacks' reports stand now: what its artifact, log and error say."""
        return InfraResult(stacks=tuple(reports.values()), reordered=plan.reordered, added=plan.added,
                           bootstrap_elsewhere=elsewhere)

    if bootstrap is not None:
        assert home is not None
        # Every environment a stack to deploy goes to, each once: bootstrapping Targets.region
        # alone left a stack pinned to another region to fail on a missing toolkit.
        every = bootstrap_environments(app, plan.to_deploy, home)
        wanted = tuple(e for e in every if e.account == home.account)
        # Another account's: cdk refuses these credentials there ("Need to perform AWS calls for
        # account ..., but the current credentials are for ..."), so trying stopped the run after
        # bootstrapping the others; and its deploys need it to trust this account, which only
        # its own credentials can grant. Its stacks still deploy, through the roles it trusts.
        foreign = [e for e in every if e.account != home.account]
        elsewhere = tuple(trust_command(e, home.account) for e in foreign)
        for environment in foreign:
            log.warning("%s is in another account than these credentials' (%s): not bootstrapped by this run. If "
                        "it is not yet, bootstrap it once with that account's credentials, trusting this one: %s",
                        environment.uri, home.account, trust_command(environment, home.account))
        log.info("bootstrapping %d environment(s): %s", len(wanted), ", ".join(e.uri for e in wanted) or "none")
        for i, environment in enumerate(wanted):
            # By the name cdk bootstraps it under (the cdk.json's toolkitStackName): named CDKToolkit
            # always, a person waited on, or read the events of, a stack cdk was not making.
            toolkit = _toolkit(environment, app.toolkit_stack)
            try:
                bootstrap(environment, f"bootstrap {i + 1}/{len(wanted)} {environment.uri}")
            except Exception as err:  # noqa: BLE001 - like a failed stack: an artifact, and what to do next
                # A failed bootstrap raised cdk's bare error: no artifact, nothing saying that no
                # stack was deployed or how to go on.
                result = standing()
                _artifact(result, failed_at=f"cdk bootstrap of {environment.uri}", resume_from=from_stack,
                          already_deployed=already_deployed, when=_again_when(err, toolkit))
                raise InfraDeployFailed(_not_prepared(result, err, from_stack, environment, toolkit,
                                                      done=wanted[:i], left=wanted[i + 1:])) from err
            except BaseException:
                # Cancelled from the UI or Ctrl-C during a bootstrap, as during a deploy: cdk is
                # stopped, CloudFormation goes on with the toolkit stack. Such a run left no word
                # of where it stood, and the key's newest artifact was still an earlier run's
                # "deployed".
                result = standing()
                _interrupted_bootstrap(result, environment, app.toolkit_stack, from_stack, already_deployed)
                raise
    total = len(plan.order)
    up_to_date: list[str] = []  # deployed with no changes (CloudFormation's reads, else cdk's word)
    after: dict[str, StackState] = {}  # the stacks deployed, read from CloudFormation once the deploys are done
    deploys: dict[str, DeployedStack] = {}
    for stack in plan.to_deploy:
        position = f"stack {plan.order.index(stack) + 1}/{total} {stack}"
        # A worker killed during the deploy runs no code: the key's newest was an earlier run's, read as this one's.
        _artifact(standing(), deploying=stack, already_deployed=already_deployed)
        try:
            deployed = tasks.deploy_stack(deployer, stack, stack_timeout_seconds, position)
        except Exception as err:  # noqa: BLE001 - any failure stops the run, and says where it stands
            # cdk asked to stop (a cancel's SIGTERM reaching it) ends in its exit, an Exception:
            # the stack did not fail, and its row says so, as a cancel caught here says it.
            reports[stack] = StackReport(stack=stack, status="interrupted" if _asked_to_stop(err) else "failed",
                                         detail=_reason(err))
            result = standing()
            try:
                changed, unknown, now = _changed(statuses, before, [*_deployed(result), stack], environments,
                                                 home, read_seconds)
            except BaseException:  # cancelled while reading: the artifact still says where the run stopped
                _artifact(result, failed_at=stack, already_deployed=already_deployed, when=_again_when(err, stack))
                raise
            # Which of those before it were up to date, in the artifact a person resumes from.
            same = _up_to_date_said(reports, deploys, plan, before, now)
            result = standing()
            # A deploy stopped at its timeout: the resume waits for CloudFormation, not for a fix. One
            # whose rollback failed too takes no deploy until someone acts: the read says so already.
            when = _again_when(err, stack, now.get(stack), environments.get(stack))
            _artifact(result, failed_at=stack, already_deployed=already_deployed, when=when)
            _checklist_outdated(stack, err, changed, unknown)
            raise InfraDeployFailed(_stopped(result, stack, err, requested, already_deployed, when, same)) from err
        except BaseException as stop:
            # Cancelled from the UI (Prefect's TerminationSignal) or Ctrl-C: cdk is stopped, but
            # CloudFormation goes on with what it had started. Such a run left no word of where it
            # stood, and the key's newest artifact was still an earlier run's "deployed".
            reports[stack] = StackReport(stack=stack, status="interrupted", detail=(
                "the run was interrupted while cdk deployed it; CloudFormation may still be working on it"))
            # Nothing is read while the run stops: cdk's word on the stacks before it, as their rows said it.
            _up_to_date_said(reports, deploys, plan, before, {})
            result = standing()
            _interrupted(result, stack, requested, already_deployed)
            # Nothing read while the run stops: every stack it deployed counts as changed, and the
            # interrupted one too, rolled back or still IN_PROGRESS.
            _checklist_outdated(stack, stop, [*_deployed(result), stack])
            raise
        deploys[stack] = deployed
        reports[stack] = StackReport(stack=stack, status="deployed", seconds=deployed.seconds,
                                     detail=_deployed_detail(deployed, plan))
    result = standing()
    # Which were up to date, from CloudFormation (read before the first deploy and now) rather than
    # from cdk's one line ("✅  <selector> (no changes)"), which a stack cdk shows under another name,
    # or another cdk version's wording, did not match; cdk's word only where a read is missing.
    if statuses is not None and home is not None:
        try:
            after = _read_states(statuses, [s for s in plan.to_deploy if s in before], environments, home, read_seconds)
        except BaseException as stop:  # it raises no Exception: cancelled or Ctrl-C, every stack deployed
            if reader is not None:
                _checklist_unfinished(result, requested, already_deployed, stop,
                                      during="while CloudFormation was read after the deploys")
                raise
            # verify off: no checklist was to run, so none was interrupted; which stacks changed is not known.
            log.error("interrupted while CloudFormation was read after the deploys: every stack of the plan is deployed "
                      "(%s), nothing is left to deploy", ", ".join(plan.order))
            _artifact(result)
            _checklist_not_asked([], plan.to_deploy)
            raise
    for stack, same in _up_to_date_said(reports, deploys, plan, before, after).items():
        log.info("stack %d/%d %s: no changes, the stack was up to date (%s)", plan.order.index(stack) + 1, total,
                 stack, same)
        up_to_date.append(stack)
    result = standing()
    # A resume's stacks before from_stack, apart: in neither count, the line's numbers did not add
    # up to the plan's it named.
    earlier = (f"{len(plan.skipped)} deployed by an earlier run were not deployed again ({', '.join(plan.skipped)})"
               if plan.skipped else "")
    if up_to_date:
        # Which stacks the run changed, at a glance: "deployed" alone was said of both alike.
        changed = [s for s in plan.to_deploy if s not in up_to_date]
        log.info("all %d stack(s) of the plan are deployed; CloudFormation changed %d (%s), %d were up to date%s",
                 total, len(changed), ", ".join(changed) or "none", len(up_to_date),
                 f", and {earlier}" if earlier else "")
    else:
        log.info("all %d stack(s) of the plan are deployed%s", total, f"; {earlier}" if earlier else "")
    if reader is None:
        _artifact(result)
        changed, unknown, _ = _changed(statuses, before, plan.to_deploy, environments, home, read_seconds, after)
        if changed or unknown:
            _checklist_not_asked(changed, unknown)
        return result
    try:
        checklist = tasks.run_checklist(reader)
    except BaseException as err:
        # Every stack deployed, then cancelled (or failed) while the checklist read: the run ended
        # with no word that nothing was left to deploy, and a person re-ran every deploy to see it.
        _checklist_unfinished(result, requested, already_deployed, err)
        raise
    result = result.model_copy(update={"checklist": checklist})
    _artifact(result)
    _checklist_artifact(checklist)
    _log_checklist(checklist)
    if not checklist.passed:
        raise ChecklistFailed(checklist, f"every stack of the plan is deployed ({total}); once these are fixed, check "
                                         "again with verify_infrastructure (no deploy needed, unless a fix is one)")
    return result


def _read_statuses(statuses: Callable[[str], StackStatuses], stacks: Sequence[str],
                   environments: dict[str, StackEnvironment], home: StackEnvironment, read_seconds: float,
                   unread: str = "it is deployed again to be sure",
                   why: str = "to tell whether the stacks before from_stack are deployed") -> dict[str, str | None]:
    """The CloudFormation status of ``stacks``, read in each one's region; a stack of another account
    is left unread (this run's credentials read the home account), with ``unread`` logged: what
    the run does with it instead (a skipped stack is deployed again).

    Raises:
        AwsNotRead: DescribeStacks failed (AccessDenied, throttling past the retries, no
            connection), or CloudFormation did not answer within ``read_seconds`` (on the shared
            client, 60 s per read and retried, the run waited minutes before its first deploy,
            silent), saying of which stacks and ``why`` they were read; nothing was deployed.
    """
    log = get_run_logger()
    by_region = _by_region(stacks, environments, home, lambda stack, account: log.warning(
        "%s is in account %s, whose stacks this run does not read: %s", stack, account, unread))
    seen: dict[str, str | None] = {}
    for region, names in by_region.items():
        try:
            # The adapter's reads, not a retried task: a read given up on goes on in its thread, and
            # a task there would retry, and log, into a run that has failed (botocore retries a
            # throttled read itself).
            read = answered(f"CloudFormation in {region}", read_seconds,
                            lambda: {stack: statuses(region).status(stack) for stack in names}, log.info)
        except (ClientError, BotoCoreError, Unanswered) as err:
            # boto's bare error said neither what the run was reading nor that nothing was deployed yet.
            # A refused permission names its action and the statement granting it, as the
            # checklist's and cleanup's refusals do: AWS's text alone left the statement to find.
            said = str(err) if isinstance(err, Unanswered) else refusal_said(err, INFRASTRUCTURE_POLICY)
            raise AwsNotRead(f"could not read the CloudFormation status of {', '.join(names)} in {region} "
                             f"(DescribeStacks), read {why}: {said}; nothing was deployed") from err
        for stack, status in read.items():
            log.info("%s: %s", stack, status or "does not exist")
        seen.update(read)
    return seen


def _refused_together(*checks: Callable[[], None]) -> None:
    """Run every check; raise one PlanRefused with what each refused, a line each, if any did."""
    refused: list[str] = []
    for check in checks:
        try:
            check()
        except PlanRefused as err:
            refused.append(str(err))
    if refused:
        raise PlanRefused("\n".join(refused))


def _say_created(before: dict[str, StackState], environments: dict[str, StackEnvironment],
                 kept: set[StackEnvironment]) -> None:
    """Say, before the first deploy, which stacks the run creates (CloudFormation has none of their
    name), by environment; as a warning where it creates every one it deploys there, unless
    ``kept`` has it: where a stack of the app this run does not deploy exists (a resume's before
    from_stack, one named already deployed), the right place, as a resume of a first deploy
    finds its stacks from from_stack on missing there.

    A targets' region (or credentials' account) not the stacks' own looks, to cdk, like a first
    deploy: a second copy of the infrastructure was created there, and the checklist, read there
    too, passed on it, with nothing said before the first deploy."""
    log = get_run_logger()
    by_environment: dict[StackEnvironment, list[str]] = {}
    for stack in before:
        by_environment.setdefault(environments[stack], []).append(stack)
    for environment, stacks in by_environment.items():
        missing = [s for s in stacks if before[s].status in (None, "DELETE_COMPLETE")]
        where = f"in CloudFormation in {environment.region} of account {environment.account}"
        if missing and len(missing) == len(stacks) and environment not in kept:
            them = f"none of the {len(stacks)} stacks to deploy exists" if len(stacks) > 1 else f"{stacks[0]} does not exist"
            log.warning("%s %s: this run creates %s there. If %s deployed already, it is elsewhere: the targets' "
                        "region or the credentials' account is not %s (cancel the run)", them, where,
                        "them all" if len(stacks) > 1 else "it", "they are" if len(stacks) > 1 else "it is",
                        "theirs" if len(stacks) > 1 else "its")
        elif missing:
            log.info("not %s yet, so created by this run: %s", where, ", ".join(missing))


def _toolkit_environments(app: AppStacks, stacks: Sequence[str], environments: dict[str, StackEnvironment],
                          home: StackEnvironment, bootstrapping: bool,
                          ) -> tuple[dict[StackEnvironment, list[str]], tuple[StackEnvironment, ...]]:
    """The environments of this account whose toolkit stack the run needs: each one's stacks of
    ``stacks`` whose templates require a toolkit version, and (``bootstrapping``) those the run
    bootstraps. Another account's toolkit is not read with these credentials (cdk judges it)."""
    needed_by: dict[StackEnvironment, list[str]] = {}
    for stack in stacks:
        environment = environments[stack]
        if environment.account == home.account and stack in app.bootstrap_versions:
            needed_by.setdefault(environment, []).append(stack)
    prepared = tuple(dict.fromkeys(environments[s] for s in stacks if environments[s].account == home.account))
    return needed_by, prepared if bootstrapping else ()


def _read_toolkits(statuses: Callable[[str], StackStatuses], name: str, wanted: Sequence[StackEnvironment],
                   read_seconds: float) -> tuple[dict[StackEnvironment, StackState], dict[StackEnvironment, int]]:
    """The toolkit stack ``name`` of each of ``wanted`` (DescribeStacks in its region), and the
    bootstrap version of each one there (its ``BootstrapVersion`` output). Raises no Exception:
    one not read (refused, not answered within ``read_seconds``) is logged and left out, and cdk
    says, as before, what stops it there."""
    log = get_run_logger()
    found: dict[StackEnvironment, StackState] = {}
    versions: dict[StackEnvironment, int] = {}
    for environment in dict.fromkeys(wanted):
        region = environment.region
        try:
            state = answered(f"CloudFormation in {region}", read_seconds,
                             lambda region=region: statuses(region).state(name), log.info)
            version = None if state.status is None else answered(
                f"CloudFormation in {region}", read_seconds,
                lambda region=region: statuses(region).bootstrap_version(name), log.info)
        except Exception as err:  # noqa: BLE001 - a check ahead of cdk's own: never stops a deploy by itself
            log.warning("could not read the CDK toolkit stack %s of %s (%s): not checked before the deploys", name,
                        environment.uri, error_said(err))
            continue
        log.info("the CDK toolkit stack %s of %s: %s%s", name, environment.uri, state.status or "does not exist",
                 "" if version is None else f", bootstrap version {version}")
        found[environment] = state
        if version is not None:
            versions[environment] = version
    return found, versions


def _read_states(statuses: Callable[[str], StackStatuses], stacks: Sequence[str],
                 environments: dict[str, StackEnvironment], home: StackEnvironment,
                 read_seconds: float, status_only: dict[str, StackState] | None = None) -> dict[str, StackState]:
    """What CloudFormation shows of ``stacks`` (``StackStatuses.seen``), read in each one's region,
    to tell which the run changed (``changed_stacks``). Raises no Exception: it only decides what
    the checklist's key says, so a stack whose read failed (its events refused, say), or a region
    that did not answer within ``read_seconds``, is logged and left out, not known to have
    changed (``_changed``), and no deploy stops for it; the others are judged on their own reads.
    A stack of another account is left out unread too.

    ``status_only``, when given, gets the DescribeStacks alone (``StackStatuses.state``) of each
    stack whose whole read failed but whose status could still be read: what the checks of its
    status judge."""
    log = get_run_logger()
    found: dict[str, StackState] = {}

    def unread(names: Sequence[str], region: str, err: BaseException) -> None:
        log.warning("could not read the CloudFormation state of %s in %s (%s): not known whether this run changed "
                    "%s", ", ".join(names), region, error_said(err), "it" if len(names) == 1 else "them")

    def each(region: str, names: Sequence[str],
             ) -> tuple[dict[str, StackState], dict[str, StackState], list[tuple[str, Exception]]]:
        # Its own dicts, handed back only if it answers in time: a read given up on goes on in its
        # thread, and wrote a status it read late into what the run's checks had already judged.
        read: dict[str, StackState] = {}
        alone: dict[str, StackState] = {}
        failed: list[tuple[str, Exception]] = []
        for stack in names:
            try:
                read[stack] = statuses(region).seen(stack)
            except Exception as err:  # noqa: BLE001 - one stack's read failing leaves the others' to judge
                failed.append((stack, err))
                if status_only is not None:
                    try:
                        alone[stack] = statuses(region).state(stack)
                    except Exception:  # noqa: BLE001, S110 - not read at all: said with its failure, left to cdk
                        pass
        return read, alone, failed

    for region, names in _by_region(stacks, environments, home, lambda stack, account: log.info(
            "%s is in account %s, whose stacks this run does not read: not known whether its deploy changed it",
            stack, account)).items():
        try:
            read, alone, failed = answered(f"CloudFormation in {region}", read_seconds,
                                           lambda region=region, names=names: each(region, names), log.info)
        except Exception as err:  # noqa: BLE001 - never stops a deploy; its stacks are not known to be unchanged
            unread(names, region, err)
            continue
        for stack, err in failed:
            unread([stack], region, err)
        found.update(read)
        if status_only is not None:
            status_only.update(alone)
    return found


def _changed(statuses: Callable[[str], StackStatuses] | None, before: dict[str, StackState], stacks: Sequence[str],
             environments: dict[str, StackEnvironment], home: StackEnvironment | None,
             read_seconds: float, known: dict[str, StackState] | None = None,
             ) -> tuple[list[str], list[str], dict[str, StackState]]:
    """Those of ``stacks`` (whose deploy ran) CloudFormation shows changed since ``before``, read
    now (``known``: those read since the deploys finished, not read again), and those not known
    to be unchanged: not read before or now (a read that failed, another account), and what the
    reads found. All of them changed when nothing was to be read (no ``statuses``: every deploy
    counts)."""
    if statuses is None or home is None:
        return list(stacks), [], {}
    known = known or {}
    after = {s: known[s] for s in stacks if s in known}
    after.update(_read_states(statuses, [s for s in stacks if s not in known], environments, home, read_seconds))
    unknown = [s for s in stacks if s not in before or s not in after]
    return list(changed_stacks(stacks, before, after)), unknown, after


def _deployed(result: InfraResult) -> list[str]:
    return [r.stack for r in result.stacks if r.status == "deployed"]


def _by_region(stacks: Sequence[str], environments: dict[str, StackEnvironment], home: StackEnvironment,
               elsewhere: Callable[[str, str], None]) -> dict[str, list[str]]:
    """``stacks`` of the home account by region; ``elsewhere(stack, account)`` for each of
    another account, whose stacks the run's credentials do not read."""
    by_region: dict[str, list[str]] = {}
    for stack in stacks:
        environment = environments[stack]
        if environment.account != home.account:
            elsewhere(stack, environment.account)
            continue
        by_region.setdefault(environment.region, []).append(stack)
    return by_region


def _last_lines(err: Exception) -> tuple[str, ...]:
    """cdk's last lines that say something: its blank ones took places among the few shown."""
    if not isinstance(err, StackDeployFailed):
        return ()
    return tuple(line for line in err.tail if line.strip())[-_TAIL_SHOWN:]


def _reason(err: Exception) -> str:
    return err.reason if isinstance(err, StackDeployFailed) else error_said(err)


# Which told that a deploy changed nothing: CloudFormation's reads, or cdk's line alone.
_SAME_BY_CLOUDFORMATION = "CloudFormation shows it as it was before the deploy"
_SAME_BY_CDK = "cdk said so; CloudFormation's state of it was not read"


def _up_to_date(deployed: DeployedStack, before: StackState | None, after: StackState | None) -> str:
    """How the run knows ``deployed``'s deploy changed nothing ("" when it did, or may have):
    CloudFormation's reads before the first deploy and after this one, when both were made
    (the same id, status, last update, newest event and termination protection, ``changed_stacks``), else cdk's word."""
    if before is not None and after is not None:
        return "" if changed_stacks([deployed.stack], {deployed.stack: before}, {deployed.stack: after}) \
            else _SAME_BY_CLOUDFORMATION
    return _SAME_BY_CDK if deployed.unchanged else ""


def _up_to_date_said(reports: dict[str, StackReport], deploys: dict[str, DeployedStack], plan: DeploymentPlan,
                     before: dict[str, StackState], after: dict[str, StackState]) -> dict[str, str]:
    """Each of ``deploys`` its deploy left up to date -> how that is known (``_up_to_date``), its
    report's detail saying so."""
    found: dict[str, str] = {}
    for stack, deployed in deploys.items():
        if same := _up_to_date(deployed, before.get(stack), after.get(stack)):
            found[stack] = same
            reports[stack] = reports[stack].model_copy(update={"detail": _deployed_detail(deployed, plan, same)})
    return found


def _deployed_detail(deployed: DeployedStack, plan: DeploymentPlan, same: str = "") -> str:
    why = next((f"before from_stack, deployed all the same: {a.reason}" for a in plan.added
                if a.stack == deployed.stack), "")
    said = f"no changes (the stack was up to date: {same})" if same else ""
    return "; ".join(part for part in (said, deployed.arn or "", why) if part)


def _same_request(requested: Sequence[str], already_deployed: Sequence[str]) -> str:
    """The rest of a resume's parameters: a resume without the run's ``already_deployed`` is
    refused when a stack of the plan depends on one of them."""
    given = f" and already_deployed={list(already_deployed)!r}" if already_deployed else ""
    return f"the same stacks ({', '.join(requested)}){given}"


def _stopped(result: InfraResult, failed: str, err: Exception, requested: Sequence[str],
             already_deployed: Sequence[str] = (), when: str | None = None, same: Collection[str] = ()) -> str:
    """The error of a run stopped at ``failed``: what it deployed (``same``: those of them it left
    up to date), what not, cdk's last lines and how to resume."""
    by = {s: [r.stack for r in result.stacks if r.status == s] for s in ("deployed", "skipped", "not deployed")}
    tail = _last_lines(err)
    # Which of those deployed it changed, as a run that finished says: "deployed" alone was said of both alike.
    unchanged = [s for s in by["deployed"] if s in same]
    moved = [s for s in by["deployed"] if s not in same]
    how = (f" (CloudFormation changed {', '.join(moved) or 'none'}; {', '.join(unchanged)} "
           f"{'was' if len(unchanged) == 1 else 'were'} up to date)" if unchanged else "")
    ended = "was interrupted while cdk deployed it" if _asked_to_stop(err) else "failed to deploy"
    lines = [f"stack {failed} {ended}: {_reason(err)}",
             f"deployed in this run: {', '.join(by['deployed']) or 'none'}{how}"]
    if by["skipped"]:
        lines.append(f"skipped (deployed by an earlier run): {', '.join(by['skipped'])}")
    lines.append(f"not deployed: {', '.join(by['not deployed']) or 'none'} (the run stopped at {failed})")
    if tail:
        lines += ["cdk's last lines:", *(f"    {line}" for line in tail)]
    if isinstance(err, StackDeployFailed) and err.timed_out:
        lines.append(f"CloudFormation may still be working on {failed}: wait until its stack is no longer "
                     "IN_PROGRESS before resuming")
    if result.bootstrap_elsewhere:
        lines.append("this run did not bootstrap the environments of other accounts; if the stack goes to one that is "
                     "not bootstrapped to trust this account, run there with its credentials: "
                     + "; ".join(result.bootstrap_elsewhere))
    # When, as the artifact says it: a deploy stopped at its timeout has nothing to fix, only a wait.
    lines.append(f"to resume {when or _again_when(err, failed)}: run deploy_infrastructure again with "
                 f"from_stack={failed!r} "
                 f"and {_same_request(requested, already_deployed)}; the stacks before it are not deployed again (a "
                 # Not "safe": the cause fixed in the app (or a context lookup changed) reaches them too,
                 # and a stack skipped by a resume was deployed from an earlier app.
                 "run without from_stack deploys them again too: cdk changes nothing in one the app has not changed "
                 "since it was deployed, but deploys to it whatever the app, or its context, changed since, a fix "
                 "included)")
    return "\n".join(lines)


def _interrupted(result: InfraResult, stack: str, requested: Sequence[str], already_deployed: Sequence[str] = ()) -> None:
    """Say, in the log and the artifact, where a run interrupted during ``stack``'s deploy stands."""
    log = get_run_logger()
    done = _deployed(result)
    left = [r.stack for r in result.stacks if r.status == "not deployed"]
    log.error("interrupted while deploying %s: cdk was stopped, but CloudFormation may still be working on it. "
              "Deployed in this run: %s; not deployed: %s. Once %s is no longer IN_PROGRESS, run "
              "deploy_infrastructure again with from_stack=%r and %s", stack,
              ", ".join(done) or "none", ", ".join(left) or "none", stack, stack,
              _same_request(requested, already_deployed))
    # The interruption is what the run ends with, not a refused artifact (_artifact never raises).
    _artifact(result, failed_at=stack, already_deployed=already_deployed,
              when=_ONCE_SETTLED.format(stack=stack))


def _interrupted_bootstrap(result: InfraResult, environment: StackEnvironment, toolkit: str, from_stack: str | None,
                           already_deployed: Sequence[str]) -> None:
    """Say, in the log and the artifact, where a run interrupted during the bootstrap of
    ``environment``'s toolkit stack (named ``toolkit``) stands."""
    again = f" with from_stack={from_stack!r}" if from_stack else ""
    get_run_logger().error(
        "interrupted while bootstrapping %s: cdk was stopped, but CloudFormation may still be working on its %s "
        "stack. No stack was deployed. Once that stack is no longer IN_PROGRESS, run deploy_infrastructure again%s",
        environment.uri, toolkit, again)
    _artifact(result, failed_at=f"cdk bootstrap of {environment.uri}", resume_from=from_stack,
              already_deployed=already_deployed,
              when=f"once the {toolkit} stack of {environment.uri} is no longer IN_PROGRESS (cdk was stopped, "
                   "CloudFormation was not)")


@contextmanager
def _said_if_interrupted(say: Callable[[], None]) -> Iterator[None]:
    """Call ``say`` (a log line and an artifact) when the block is interrupted: cancelled from the
    UI (Prefect's TerminationSignal) or Ctrl-C, which are not Exceptions; a failure says why itself."""
    try:
        yield
    except Exception:
        raise
    except BaseException as stop:
        _said_once(stop, say)
        raise


@contextmanager
def _said_if_refused(requested: Sequence[str], from_stack: str | None,
                     already_deployed: Sequence[str]) -> Iterator[None]:
    """Write the artifact of a run refused (or failed) in the block, before anything was deployed
    or bootstrapped: such a run wrote none, and the key's newest artifact was an earlier run's
    "Infrastructure deployed", read in the UI as this run's outcome. The error is raised as it was."""
    try:
        yield
    except Exception as err:
        _said_once(err, lambda: _refused_before_any_deploy(err, requested, from_stack, already_deployed))
        raise


# Set on an error once a guard (_said_once) wrote its artifact.
_RECORDED = "rollway_infra_recorded"


def _said_once(stop: BaseException, say: Callable[[], None]) -> None:
    """``say`` what stopped the run, unless a guard nested inside this one already did for ``stop``:
    an outer guard writes no second artifact over the inner one's, which says more."""
    if not getattr(stop, _RECORDED, False):
        say()
        setattr(stop, _RECORDED, True)


def _refused_before_any_deploy(err: Exception, requested: Sequence[str], from_stack: str | None,
                               already_deployed: Sequence[str]) -> None:
    how = "refused" if isinstance(err, (InfraRefused, PlanRefused)) else "failed"
    result = InfraResult(stacks=tuple(StackReport(stack=s, status="not deployed", detail=f"{how} before any deploy")
                                      for s in requested))
    _artifact(result, stopped=(how, error_said(err)), resume_from=from_stack, already_deployed=already_deployed)


def _again_with(from_stack: str | None, already_deployed: Sequence[str]) -> str:
    """The parameters of a run interrupted before its first deploy, to give again."""
    given = [f"from_stack={from_stack!r}"] if from_stack else []
    given += [f"already_deployed={list(already_deployed)!r}"] if already_deployed else []
    return f" with {' and '.join(given)}" if given else ""


def _interrupted_synth(requested: Sequence[str], from_stack: str | None, already_deployed: Sequence[str]) -> None:
    """Say, in the log and the artifact, that a run interrupted while cdk synthesized deployed nothing."""
    _interrupted_before_any_deploy(
        "while synthesizing the CDK app: cdk synth was stopped and no stack was deployed in this run",
        ": it starts over with the synth", "cdk synth (the app's stacks were not read yet)",
        "(nothing was deployed; cdk was stopped)", requested, from_stack, already_deployed)


def _interrupted_account(requested: Sequence[str], from_stack: str | None, already_deployed: Sequence[str],
                         named: str = "the AWS credentials") -> None:
    """Say, in the log and the artifact, that a run interrupted while it read the account of its
    credentials (``named``, as ``credentials_named`` says them; STS, before the synth) deployed nothing."""
    _interrupted_before_any_deploy(
        f"while reading the account of {named} (STS): nothing was run and no stack was deployed in this "
        "run", "", "reading the AWS account (STS, before cdk synth)", "(nothing was deployed)",
        requested, from_stack, already_deployed)


def _interrupted_before_any_deploy(when: str, then: str, failed_at: str, nothing: str, requested: Sequence[str],
                                   from_stack: str | None, already_deployed: Sequence[str]) -> None:
    """The log line and the artifact of a run interrupted ``when``, before it deployed anything:
    every requested stack not deployed, and the same run to start again (``then``: what it does)."""
    get_run_logger().error("interrupted %s (asked: %s). Run deploy_infrastructure again%s%s", when,
                           ", ".join(requested), _again_with(from_stack, already_deployed), then)
    result = InfraResult(stacks=tuple(StackReport(stack=s, status="not deployed", detail="interrupted before any deploy")
                                      for s in requested))
    _artifact(result, failed_at=failed_at, resume_from=from_stack, already_deployed=already_deployed, when=nothing)


def _interrupted_reading(plan: DeploymentPlan, read: Sequence[str], from_stack: str | None,
                         already_deployed: Sequence[str]) -> None:
    """Say, in the log and the artifact, that a run interrupted while CloudFormation's statuses of
    ``read`` were read changed nothing: the run ended with no word, and the key's newest artifact
    was still an earlier run's, read as this one's."""
    get_run_logger().error(
        "interrupted while reading the CloudFormation status of %s (DescribeStacks): no stack was deployed or "
        "bootstrapped in this run. Run deploy_infrastructure again%s", ", ".join(read),
        _again_with(from_stack, already_deployed))
    result = InfraResult(reordered=plan.reordered, stacks=tuple(
        StackReport(stack=s, status="skipped", detail="before from_stack; interrupted before its status was read")
        if s in plan.skipped else StackReport(stack=s, status="not deployed", detail="interrupted before any deploy")
        for s in plan.order))
    _artifact(result, failed_at=f"reading the CloudFormation status of {', '.join(read)}", resume_from=from_stack,
              already_deployed=already_deployed, when="(nothing was deployed or bootstrapped)")


def _checklist_unfinished(result: InfraResult, requested: Sequence[str], already_deployed: Sequence[str],
                          err: BaseException, during: str = "during the pre-deployment checklist") -> None:
    """Say, in the log and the artifact, that a run whose checklist was interrupted (``during``
    it, or before it) or failed to run deployed every stack; and under the checklist's key, that
    nothing was checked."""
    deployed = [r.stack for r in result.stacks if r.status in ("deployed", "skipped")]
    what = (f"interrupted {during}" if not isinstance(err, Exception)
            else f"the pre-deployment checklist could not run ({error_said(err)})")
    get_run_logger().error(
        "%s: every stack of the plan is deployed (%s), nothing is left to deploy. Check with verify_infrastructure "
        "(reads only, no deploy); deploy_infrastructure again with %s would deploy every stack again", what,
        ", ".join(deployed), _same_request(requested, already_deployed))
    _artifact(result, checklist_unfinished="was interrupted" if not isinstance(err, Exception) else "could not run")
    # Under the checklist's key too, as verify_infrastructure says it: written in the deployment
    # artifact alone, the key's newest stayed an earlier run's "passed", read as this run's verdict.
    _deploy_checked_nothing(err, during,
                            "(every stack of the plan is deployed: nothing is left to deploy)",
                            "check with `verify_infrastructure` (reads only, no deploy)")


def _checklist_outdated(stopped_at: str, err: BaseException, changed: Sequence[str],
                        unknown: Sequence[str] = ()) -> None:
    """Under the checklist's key, that a deploy which stopped at ``stopped_at`` (failed or
    interrupted) before its checklist checked nothing, though it changed stacks (``changed``, the
    stopped one among them when CloudFormation moved it: rolled back, or still IN_PROGRESS, its
    checklist item no longer passes) or may have (``unknown``: not read): the key's newest stayed
    an earlier run's "passed", read as describing stacks changed since. A run known to have
    changed none leaves the key alone: its verdict holds."""
    if not changed and not unknown:
        get_run_logger().info("CloudFormation shows no stack changed by this run: the checklist's newest verdict "
                              "still describes them")
        return
    how = "was interrupted" if not isinstance(err, Exception) or _asked_to_stop(err) else "failed"
    others = [s for s in changed if s != stopped_at]
    said = f"this run changed {', '.join(others) or 'no stack before it'}"
    if stopped_at in changed:
        said += f", and {stopped_at} {how} while cdk deployed it"
    elif stopped_at in unknown:
        said += f", and {stopped_at} {how}"
    else:
        said += f"; {stopped_at} failed before CloudFormation changed it"
    if unknown:
        said += f"; {_not_known(unknown)}: an earlier verdict may no longer describe them"
    else:
        said += f": an earlier verdict no longer describes {'them' if stopped_at in changed else ', '.join(others)}"
    _deploy_checked_nothing(
        err, f"while deploying {stopped_at}", f"({said})",
        f"check with `verify_infrastructure` (reads only) or resume with `deploy_infrastructure` and "
        f"from_stack={stopped_at!r}")


def _checklist_not_asked(changed: Sequence[str], unknown: Sequence[str] = ()) -> None:
    """Under the checklist's key, that a deploy run with ``verify`` off which changed stacks (or
    may have: ``unknown``, not read) checked nothing: the key's newest stayed an earlier run's
    "passed", read as describing them."""
    said = "; ".join([*([f"this run changed {', '.join(changed)}"] if changed else []),
                      *([_not_known(unknown)] if unknown else [])])
    get_run_logger().warning("verify is off: the pre-deployment checklist was not read, though %s. Check with "
                             "verify_infrastructure (reads only)", said)
    verdict = "may no longer describe them" if unknown else "no longer describes them"
    _not_checked("`verify` was off: this run did not read the checklist", f"({said}: an earlier verdict {verdict})",
                 "Check with `verify_infrastructure` (reads only, no deploy)")


def _not_known(unknown: Sequence[str]) -> str:
    """That whether the run changed ``unknown`` (stacks one of the two reads did not see) is not
    known: said so, rather than changed or unchanged."""
    return (f"whether it changed {', '.join(unknown)} is not known: CloudFormation's state of "
            f"{'it' if len(unknown) == 1 else 'them'} could not be read (the run's log says why)")


def _deploy_checked_nothing(err: BaseException, when: str, changed: str, again: str) -> None:
    """Under the checklist's key, that a deploy's checklist checked nothing: "not checked" with
    why for a failure, "interrupted" ``when`` for a cancellation or Ctrl-C, as verify says them."""
    if isinstance(err, Exception):
        _checklist_not_checked(err, changed, again)
    else:
        _checklist_interrupted(when, changed, again)


def _not_prepared(result: InfraResult, err: Exception, from_stack: str | None, environment: StackEnvironment,
                  toolkit: str, *, done: Sequence[StackEnvironment], left: Sequence[StackEnvironment]) -> str:
    """The error of a run whose bootstrap of ``environment`` (its toolkit stack, ``toolkit`` as
    ``_toolkit`` says it) failed, or was interrupted (cdk asked to stop: nothing of it failed)."""
    tail = _last_lines(err)
    ended = "was interrupted" if _asked_to_stop(err) else "failed"
    lines = [f"cdk bootstrap of {environment.uri} {ended}: {_reason(err)}",
             f"bootstrapped: {', '.join(e.uri for e in done) or 'none'}; not bootstrapped: "
             f"{', '.join(e.uri for e in [environment, *left])}",
             f"no stack was deployed: {', '.join(r.stack for r in result.stacks if r.status == 'not deployed')}"]
    if tail:
        lines += ["cdk's last lines:", *(f"    {line}" for line in tail)]
    again = f" with from_stack={from_stack!r}" if from_stack else ""
    lines.append(f"{_again_when(err, toolkit)}, run deploy_infrastructure again{again} "
                 "(bootstrapping again is safe)")
    return "\n".join(lines)


def _again_when(err: Exception, stack: str, now: StackState | None = None,
                environment: StackEnvironment | None = None) -> str:
    """When to run again after ``stack``'s deploy or bootstrap failed: one stopped at its timeout
    may still be in progress, and going over it fails until CloudFormation is done with it; one
    CloudFormation shows (``now``, in ``environment``) in a state it takes no deploy of needs the
    command that frees it first (``stuck_remedy``)."""
    if isinstance(err, StackDeployFailed) and err.timed_out:
        # A stack that takes longer than the timeout (a CloudFront distribution, a database: 40 minutes) is
        # stopped at it again on the resume: the parameter that gives it more is named.
        return (f"once {stack} is no longer IN_PROGRESS in CloudFormation (cdk was stopped at stack_timeout_seconds, "
                "CloudFormation was not), with a larger stack_timeout_seconds if it needs longer")
    if now is not None and changing(now.status):
        # cdk gave up (its credentials expired in a long deploy, it was killed) while CloudFormation
        # went on: a resume "once the cause is fixed", at once, was refused on the stack's status.
        fixed = "" if _asked_to_stop(err) else "the cause is fixed and "  # a cancel has nothing to fix
        return (f"once {fixed}{stack} is no longer IN_PROGRESS in CloudFormation (it shows it "
                f"{now.status}: cdk stopped, CloudFormation did not)")
    region = environment.region if environment is not None else None
    if now is not None and (remedy := stuck_remedy(now.status, stack, region)) is not None:
        return f"once {stack} takes a deploy again: CloudFormation shows it {now.status}: {remedy}"
    if _asked_to_stop(err):
        # Cancelled (or shut down) with cdk: nothing to fix, as a cancel caught by the run says it.
        return _ONCE_SETTLED.format(stack=stack)
    return "once the cause is fixed"


_ONCE_SETTLED = "once {stack} is no longer IN_PROGRESS in CloudFormation (cdk was stopped, CloudFormation was not)"
"""When a run whose cdk was stopped (cancelled, Ctrl-C) resumes at ``stack``."""


def _asked_to_stop(err: BaseException) -> bool:
    """Whether ``err`` is cdk ending on a request to stop (a cancel's SIGTERM reaching it), not a failure."""
    return isinstance(err, StackDeployFailed) and err.interrupted


def _toolkit(environment: StackEnvironment, name: str) -> str:
    """``environment``'s toolkit stack, ``name`` as the app's cdk.json gives it (``AppStacks.toolkit_stack``)."""
    return f"the toolkit stack ({name}) of {environment.uri}"


def _log_checklist(checklist: Checklist) -> None:
    log = get_run_logger()
    for item in checklist.items:
        (log.info if item.passed else log.error)("checklist %s %s %s: %s", "PASS" if item.passed else "FAIL",
                                                 item.kind, item.name, item.reason)


def _artifact(result: InfraResult, *, failed_at: str | None = None, resume_from: str | None = "",
              already_deployed: Sequence[str] = (), when: str = "once the cause is fixed",
              checklist_unfinished: str = "", stopped: tuple[str, str] | None = None,
              deploying: str | None = None) -> None:
    """The run's artifact. ``stopped``: (refused or failed, why) for a run that ended before
    anything was deployed or bootstrapped; ``deploying``: the stack whose deploy starts, where a
    run whose worker died then (no code runs to say so) resumes."""
    heading = (f"# Infrastructure: {stopped[0]}, nothing deployed" if stopped
               else f"# Infrastructure: deploying {deploying}" if deploying
               else f"# Infrastructure: stopped at {failed_at}" if failed_at
               else "# Infrastructure deployed, checklist unfinished" if checklist_unfinished
               else "# Infrastructure deployed" + ("" if result.checklist is None or result.checklist.passed
                                                   else ", checklist FAILED"))
    rows = [f"| {i} | `{r.stack}` | {r.status} | {'' if r.seconds is None else f'{r.seconds:.1f}'} | "
            f"{markdown_cell(r.detail)} |" for i, r in enumerate(result.stacks, 1)]
    parts = [heading, "", "## Stacks", "", "| # | stack | status | seconds | detail |", "|---|---|---|---|---|", *rows]
    if stopped:
        given = _again_with(resume_from or None, already_deployed)
        parts[1:1] = ["", f"**Why:** {stopped[1]}", "",
                      f"**Nothing was deployed or bootstrapped by this run.** Fix the cause above and run "
                      f"deploy_infrastructure again{given}."]
    if result.added:
        parts += ["", "## Deployed though before from_stack", "",
                  "CloudFormation did not show these stacks deployed, so this resumed run deployed them too:", "",
                  *(f"- `{a.stack}`: {a.reason}" for a in result.added)]
    if result.bootstrap_elsewhere:
        parts += ["", "## Not bootstrapped: another account", "",
                  "These credentials cannot bootstrap another account's environment, and its deploys need it to "
                  "trust this account. If it is not bootstrapped so yet, run with that account's credentials:", "",
                  *(f"- `{command}`" for command in result.bootstrap_elsewhere)]
    resume_from = failed_at if resume_from == "" else resume_from  # a stack resumes at itself
    if failed_at:
        given = f" and `already_deployed={list(already_deployed)!r}`" if already_deployed else ""
        parts += ["", f"Resume with `from_stack={resume_from!r}`{given} {when}." if resume_from
                  else f"Run it again{given.replace(' and', ' with', 1)} {when}."]
    if deploying:
        given = f" and `already_deployed={list(already_deployed)!r}`" if already_deployed else ""
        parts += ["", f"If the run ended here with no other word (its worker stopped), resume with "
                      f"`from_stack={deploying!r}`{given} once {deploying} is no longer IN_PROGRESS in CloudFormation."]
    if checklist_unfinished:
        parts += ["", f"The pre-deployment checklist {checklist_unfinished}, after every stack of the plan deployed: "
                      "nothing is left to deploy. Check with `verify_infrastructure` (reads only)."]
    if result.checklist is not None:
        parts += ["", "## Pre-deployment checklist", "", result.checklist.markdown()]
    # Never raised: an artifact the API refused replaced the error saying what was deployed and how
    # to resume with the API's own, and after every stack deployed it failed the run before the
    # checklist ran.
    for_people("infrastructure deployment", lambda: create_markdown_artifact(
        key=ARTIFACT_KEY, markdown="\n".join(parts), description="infrastructure deployment"))


def cdk_environment(credentials: AwsCredentials, region: str, account: str) -> CdkEnvironment:
    """The environment a cdk process deploys with, from the AwsCredentials block the flows load.

    Keys go as they are; a profile by name; an assumed role as temporary credentials from a new
    AssumeRole (they last as long as the role's session, an hour by default, so the flow calls
    this again for every cdk run); a block with none of these leaves cdk to boto3's usual chain
    (this process's AWS_* variables, a role).
    """
    endpoint = credentials.aws_client_parameters.endpoint_url
    common: dict[str, Any] = {"region": region, "account": account,
                              "endpoint_url": str(endpoint) if endpoint else None}
    if credentials.assume_role_arn:
        # Assumed as the run's clients assume it, through the block's endpoint: prefect-aws's
        # get_boto3_session sent AssumeRole to the public STS endpoint, which a worker reaching
        # AWS through a VPC endpoint (or the embedded AWS) cannot reach.
        frozen = assumed_role_session(credentials).get_credentials().get_frozen_credentials()
        return CdkEnvironment(**common, access_key_id=frozen.access_key,
                              secret_access_key=SecretStr(frozen.secret_key),
                              session_token=SecretStr(frozen.token) if frozen.token else None)
    if credentials.aws_access_key_id:
        secret = credentials.aws_secret_access_key
        return CdkEnvironment(**common, access_key_id=credentials.aws_access_key_id,
                              secret_access_key=SecretStr(secret.get_secret_value()) if secret else None)
    return CdkEnvironment(**common, profile=credentials.profile_name)


# An AWS account id, as STS answers it: anything else is asked again rather than trusted.
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


def _account(get_client: Callable[[str], Any], nothing: str, *, named: str = "the AWS credentials") -> str:
    """The account the credentials read (STS GetCallerIdentity), the run's first AWS call.
    ``named``: the credentials as the error names them (``credentials_named``: the block, by name).

    Asked once per run: a session without a role has asked STS already as it was made (its
    ``identity``, ``flows.env.session_clients``), and the run asked the same question twice in a
    row, the second time waiting out the block's retries where the first had short limits.

    Raises:
        AwsNotRead: the call failed (expired or invalid keys, no credentials, no connection),
            with AWS's code and message and ``nothing`` (what was not done): boto's bare error
            said neither what was being read nor that nothing had been done yet.
    """
    # An assumed role's account is its ARN's (``SessionClients.account``): no call either.
    known = getattr(get_client, "account", None) or ""
    if _ACCOUNT_ID.fullmatch(known):
        return known
    try:
        return get_client("sts").get_caller_identity()["Account"]
    except (ClientError, BotoCoreError) as err:
        # The block named, as the session's own check names it (flows.env): AWS's words name none.
        raise AwsNotRead(f"could not read the account of {named} (STS GetCallerIdentity): "
                         f"{aws_message(err)}; {nothing}; {credentials_remedy(err, 'sts:GetCallerIdentity')}") from err


def _app_dir(cdk_app_dir: str, unset: str = "") -> Path:
    """The CDK app's directory, checked before anything runs.

    ``unset``: what the flow does without one, when it may be left unset: said as the way out of
    a blank one (a form's field cleared to "" is given, not unset).

    Raises:
        InfraRefused: blank (Path("") is the working directory: the worker's own app, if it had
            one, was deployed or read as if named), not a directory (one given relative says where
            it was looked for: the worker's working directory is not the person's), no cdk.json, or
            one cdk synth would refuse (``app_settings_problem``).
    """
    if not cdk_app_dir.strip():
        unset = f", or leave it unset ({unset})" if unset else ""
        raise InfraRefused("cdk_app_dir is blank: give the directory of the CDK app's cdk.json (an absolute path on the "
                           f"machine that runs the flow){unset}")
    path = Path(cdk_app_dir).expanduser()
    if not path.is_dir():
        where = "" if path.is_absolute() else (f" (looked for {path.absolute()}: a relative path is taken from the "
                                               "working directory of the process running the flow)")
        raise InfraRefused(f"cdk_app_dir {cdk_app_dir!r} is not a directory{where}")
    if not (path / "cdk.json").is_file():
        raise InfraRefused(f"cdk_app_dir {cdk_app_dir!r} has no cdk.json: it is not a CDK app")
    if (problem := app_settings_problem(path)) is not None:
        raise InfraRefused(f"cdk_app_dir {cdk_app_dir!r}: {problem}")
    return path


def regional_clients(credentials: AwsCredentials, get_client: Callable[[str], Any], home_region: str, *,
                     nothing: str, read_seconds: float = READ_SECONDS) -> Callable[[str], Callable[[str], Any]]:
    """region -> a client factory there (one per region): ``get_client`` for ``home_region``,
    else the same credentials in that region, through the runs' one session path
    (``session_in_region``: with the block as saved, reading a stack the app pins to eu-west-1
    failed with "the AWS credentials are for region us-west-2").

    ``nothing``: what the run has not done when a region's session cannot be made.
    ``read_seconds``: how long one call of those clients may take (``session_clients``).

    Raises (when a region's factory is asked for):
        CredentialsRefused: the role could not be assumed there (STS deactivated in that region,
            say). Made with ``client_factory`` directly, that ended on boto's bare error, or
            failed a checklist item as a DescribeStacks refusal after every stack was deployed.
        AccountNotLoaded: the block cannot act in that region.
    """
    @functools.cache
    def in_region(region: str) -> Callable[[str], Any]:
        if region == home_region:
            return get_client
        return session_in_region(credentials, region, nothing=nothing, read_seconds=read_seconds,
                                 why=f" in {region}, to read what the CDK app deploys there")

    return in_region


def checker_for(get_client: Callable[[str], Any], targets: Targets, *, app: AppStacks | None = None,
                home: StackEnvironment | None = None,
                clients_in: Callable[[str], Callable[[str], Any]] | None = None,
                read_seconds: float = READ_SECONDS, canary_header: str | None = None,
                checks: Sequence[CheckRequest] = ()) -> InfraChecker:
    """The checklist's reader.

    Args:
        get_client: clients in ``Targets.region``.
        targets: what to check.
        app: the CDK app's stacks (its manifest and templates); with ``home``, each of
            ``targets.stacks`` the app defines is read in the region the app deploys it to, and
            each table, queue, dashboard, alarm and the alert topic whose name a stack's template
            gives is read in that stack's region (but rollway's own tables and the alert topic,
            used in ``Targets.region``, fail when deployed elsewhere); one in another account
            fails its item as not readable; a stack of ``targets.stacks`` that is the construct id
            of one the app gives another CloudFormation name fails naming that name, and a missing
            one the app does not define fails naming the closest it does. Without,
            everything is read in ``Targets.region``.
        home: the account the clients read and ``Targets.region`` (for environment-agnostic stacks).
        clients_in: region -> clients there (``regional_clients``), for what is read in other regions.
        read_seconds: how long one read may wait for its answer.
        canary_header: the header validate_deployment pins its HTTP checks with (its
            ``spec.canary_header``): the listener's rule pinning them is an item too. None: not checked.
        checks: the requests the validation's checks send (``_pinned``), with ``canary_header``:
            the pin is judged by them, as the validation judges it; none: by the weighted rule's
            requests, a pin on the checks' paths alone failing though the validation takes it.

    Raises:
        PlanRefused: a checked stack's environment in the app, or that of a stack defining a
            checked resource, is not ``aws://<account>/<region>``.
        ValueError: something to read in another region and no ``clients_in``; ``read_seconds``
            is not a read's bound.
    """
    read_bound(read_seconds)  # before any client is made
    located: dict[str, StackEnvironment] = {}
    places: dict[tuple[str, str], ResourcePlace] = {}
    if app is not None and home is not None:
        located = stack_environments(app, [s for s in targets.stacks if s in app.dependencies], home)
        places = resource_places(app, checked_resources(targets), home)
        if unnamed := unnamed_resources(targets, app.resources):
            # Said before a deploy's first stack: its item failed only once every stack was deployed.
            run_logger(__name__).warning(
                "the checklist looks for %s, which no stack of the CDK app names, though it names others of its "
                "kind: unless made outside the app or named by a function (Fn::Sub, Ref), %s once the stacks are "
                "deployed; a name misspelt in the targets block is fixed there", "; ".join(unnamed),
                "its item fails" if len(unnamed) == 1 else "their items fail")
    return AwsInfraChecker(get_client("dynamodb"), get_client("sqs"), get_client("cloudwatch"), get_client("sns"),
                           get_client("cloudformation"), targets, stack_environments=located, resource_places=places,
                           account=home.account if home is not None else None, clients_in=clients_in,
                           construct_ids=app.construct_ids if app is not None else None,
                           app_stacks=app.names if app is not None else None,
                           read_seconds=read_seconds, say=_still_reading,
                           elbv2=get_client("elbv2") if canary_header is not None else None,
                           canary_header=canary_header, checks=checks)


def _pinned(canary_header: str | None,
            validation_spec: ValidationSpec | None) -> tuple[str | None, tuple[CheckRequest, ...]]:
    """The header the validation's checks are pinned by (``Name: value``, as it sends it: the
    spec's when given) and, given its spec, the requests they send, which the pin is then judged by
    as the validation judges it. Given the header alone, the pin is judged by the weighted rule's
    requests (no checks' requests), stricter: a pin on the checks' paths alone fails its item.

    Raises:
        InfraRefused: before any AWS call: a header the validation would refuse (a checklist passed
            on a header no check could carry); one that is not the spec's.
    """
    try:
        header = header_line(canary_header) if canary_header is not None else None
    except ValueError as err:
        raise InfraRefused(str(err)) from None
    if validation_spec is None:
        return header, ()
    spec_header = validation_spec.canary_header  # ``Name: value`` already (ValidationSpec)
    # Judged for another header than the checks carry, the item would say nothing of their pin.
    if header is not None and spec_header is None:
        raise InfraRefused(f"canary_header `{header}` is given, but validation_spec's checks carry no header (its "
                           f"canary_header is not set): they are not pinned; set its canary_header to `{header}`, or "
                           "leave canary_header out (then no listener rule is checked)")
    # One header to a listener rule when the lines differ in case alone: HTTP reads its name in any case,
    # and an http-header condition compares values without regard to case (both lines are
    # ``header_line``'s "Name: value", so the whole lines compare as their parts would).
    if header is not None and spec_header is not None and header.lower() != spec_header.lower():
        raise InfraRefused(f"canary_header `{header}` is not the header validation_spec's checks are pinned by: they "
                           f"carry `{spec_header}`; give the same in both, or leave canary_header out (validation_spec's "
                           "is taken)")
    if spec_header is None:
        return None, ()  # its checks are not pinned: no rule pins them, none is read
    # A spec whose checks' URLs could not be sent is refused with the flow's parameters
    # (``ValidationSpec`` runs check_requests as it is built).
    return spec_header, check_requests(validation_spec)


def _still_reading(message: str) -> None:
    """A line of a checklist read under way, said in the run's log (the UI shows it): a read still
    waiting for its answer (every 10 s), and the listener's read asked again while throttled
    ("<call> was throttled (<code>); asking again in ...", the call DescribeRules or a lookup
    before it). The checklist's items are logged only once every read is done."""
    run_logger(__name__).info("checklist: %s", message)


@flow(name="deploy_infrastructure", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def deploy_infrastructure(
    cdk_app_dir: str,
    stacks: list[StackName] | None = None,
    from_stack: StackName | None = None,
    already_deployed: list[StackName] = [],  # noqa: B006 - Prefect copies parameters per run
    cdk_executable: str = "cdk",
    direct: bool = False,
    bootstrap: bool = False,
    verify: bool = True,
    stack_timeout_seconds: WaitSeconds = 1800.0,
    synth_timeout_seconds: WaitSeconds = 600.0,
    read_timeout_seconds: ReadSeconds = READ_SECONDS,
    targets_block: str | None = None,
    aws_credentials_block: str | None = None,
    canary_header: str | None = None,
    validation_spec: ValidationSpec | None = None,
) -> InfraResult:
    """Deploy the CDK app's stacks in dependency order, one per task, then verify the
    pre-deployment checklist.

    With ``bootstrap``, every region of this account the stacks to deploy go to (an
    environment-agnostic stack: the targets' region) is bootstrapped first, each once; an
    environment of another account is not (these credentials cannot), and the log and the
    artifact give the ``cdk bootstrap --trust`` to run there.

    Args:
        cdk_app_dir: the CDK app (the directory of its cdk.json), on the machine that runs the flow.
        stacks: the stacks to deploy, in order (default: the targets' stacks).
        from_stack: resume at this stack after a failure; the stacks before it are not deployed again.
        already_deployed: stacks outside ``stacks`` that are deployed, so stacks of the plan may depend on them.
        cdk_executable: the cdk CLI (a name on PATH or a path).
        direct: deploy with ``--method=direct`` (no change sets; for the embedded AWS).
        bootstrap: first ``cdk bootstrap`` each region of this account the stacks go to (another account: see the log).
        verify: run the pre-deployment checklist after the deploys.
        stack_timeout_seconds: how long one stack's deploy may take.
        synth_timeout_seconds: how long synthesizing the app may take (longer for an app bundling assets).
        read_timeout_seconds: how long one read of AWS (a stack's status, a checklist item) may take, retries included.
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        canary_header: validate_deployment's spec.canary_header, when its checks are pinned: the checklist then checks the listener rule pinning them; none: validation_spec's, when it sets one; else not checked.
        validation_spec: validate_deployment's spec: the rule pinning its checks (by its canary_header) is judged by the requests they send, as it judges it; none: by the weighted rule's requests.
    """
    log = get_run_logger()
    # Everything a person can get wrong is refused before anything runs.
    # Until the targets are loaded, the stacks asked for are those given (the artifact's rows).
    asked = list(stacks or ())
    with _said_if_refused(asked, from_stack, already_deployed):
        app_dir = _app_dir(cdk_app_dir)
        pinned_by, checks = _pinned(canary_header, validation_spec)
        executable = resolve(cdk_executable, "install the AWS CDK CLI (npm install aws-cdk) or pass cdk_executable")
        targets = load_targets(targets_block)
        requested = list(stacks) if stacks is not None else list(targets.stacks)
        asked[:] = requested
        check_request(requested, from_stack=from_stack, already_deployed=already_deployed)
        try:
            check_cdk_executable(executable)
        except ValueError as err:
            raise InfraRefused(f"cdk_executable {cdk_executable!r}: {err}") from err
        credentials = load_credentials(aws_credentials_block, targets.region)
        # Cancelled from the UI or Ctrl-C while STS is asked (an AssumeRole or GetCallerIdentity can
        # wait minutes on an endpoint out of reach): the run ended with no word, and the key's newest
        # artifact was still an earlier run's "deployed", while a run stopped a moment later said
        # nothing was deployed.
        named = credentials_named(credentials)
        with _said_if_interrupted(lambda: _interrupted_account(requested, from_stack, already_deployed, named)):
            get_client = session_clients(credentials, targets.region, nothing="nothing was deployed",
                                         read_seconds=read_timeout_seconds)
            account = _account(get_client, "nothing was deployed", named=named)
            log.info("deploying to account %s in %s from %s", account, targets.region, app_dir)
            # Checked once here (a role that cannot be assumed fails before the app is read), then made
            # afresh for every cdk run: an assumed role's credentials, frozen once, expired an hour into
            # a run of deploys, in the middle of a stack.
            cdk_environment(credentials, targets.region, account)
    environment = lambda: cdk_environment(credentials, targets.region, account)  # noqa: E731

    # A stack pinned to another region is read there: its status on a resume, its checklist item.
    clients_in = regional_clients(credentials, get_client, targets.region, nothing="nothing was deployed",
                                  read_seconds=read_timeout_seconds)
    home = StackEnvironment(account=account, region=targets.region)
    # The synth's time given: fixed at 600 s, an app bundling its assets on a cold worker could
    # never be deployed, and no parameter said how to give it more.
    with CdkCli(executable, app_dir, environment, direct=direct, synth_timeout_seconds=synth_timeout_seconds) as cdk:
        return run_deploy_infrastructure(
            cdk, (lambda app: checker_for(get_client, targets, app=app, home=home, clients_in=clients_in,
                                          read_seconds=read_timeout_seconds, canary_header=pinned_by, checks=checks))
            if verify else None, requested,
            from_stack=from_stack, already_deployed=already_deployed, stack_timeout_seconds=stack_timeout_seconds,
            home=home,
            bootstrap=(lambda env, progress: tasks.bootstrap(cdk, env.uri, stack_timeout_seconds, progress))
            if bootstrap else None,
            statuses=lambda region: CloudFormationStacks(clients_in(region)("cloudformation")),
            read_seconds=read_timeout_seconds)


def run_verify_infrastructure(checker: InfraChecker) -> Checklist:
    """The checklist, logged and published as an artifact; raises ChecklistFailed if any item failed."""
    with _verify_said_if_failed(), _said_if_interrupted(lambda: _verify_interrupted("while the checklist read AWS")):
        checklist = tasks.run_checklist(checker)
    _log_checklist(checklist)
    _checklist_artifact(checklist)
    if not checklist.passed:
        raise ChecklistFailed(checklist, "once these are fixed, run verify_infrastructure again")
    return checklist


def _checklist_artifact(checklist: Checklist) -> None:
    """The checklist's verdict under the checklist's key, by whichever flow read it: written by
    verify_infrastructure alone, a deploy's checklist left that key's newest an earlier verify's
    verdict ("FAILED" after the deploy that fixed it, or "passed" after one whose items failed)."""
    verdict = "passed" if checklist.passed else "FAILED"
    # Never raised: the API's error replaced the list of failed items.
    for_people("pre-deployment checklist", lambda: create_markdown_artifact(
        key=CHECKLIST_ARTIFACT_KEY, markdown=f"# Pre-deployment checklist {verdict}\n\n{checklist.markdown()}",
        description="pre-deployment checklist"))


# What a verify_infrastructure that checked nothing changed, and what to do next.
_VERIFY_CHANGED = "(and nothing changed: the checklist only reads)"
_VERIFY_AGAIN = "run `verify_infrastructure` again"


def _verify_interrupted(when: str) -> None:
    """Say, in the log and the artifact, that an interrupted verify_infrastructure checked nothing:
    the key's newest artifact was otherwise an earlier run's "passed", read as this run's."""
    get_run_logger().error("interrupted %s: the checklist did not finish, nothing was checked (and nothing changed: "
                           "it only reads). Run verify_infrastructure again", when)
    _checklist_interrupted(when, _VERIFY_CHANGED, _VERIFY_AGAIN)


def _checklist_interrupted(when: str, changed: str, again: str) -> None:
    """Under the checklist's key, in place of a verdict, that the run (either flow) was interrupted
    ``when`` and checked nothing; ``changed``: what the run changed, ``again``: what to run next."""
    for_people("pre-deployment checklist", lambda: create_markdown_artifact(
        key=CHECKLIST_ARTIFACT_KEY, description="pre-deployment checklist",
        markdown=f"# Pre-deployment checklist interrupted\n\nThe run was interrupted {when}: nothing was checked "
                 f"{changed}. {again[:1].upper()}{again[1:]}."))


def _checklist_not_checked(err: Exception, changed: str, again: str) -> None:
    """Under the checklist's key, in place of a verdict, that the run's checklist (either flow's)
    could not run, ``err`` saying why: refused, its reader failing."""
    _not_checked(error_said(err), changed, f"Fix the cause above and {again}")


def _not_checked(why: str, changed: str, then: str) -> None:
    """Under the checklist's key, in place of a verdict, "not checked": ``why``, what the run
    changed and ``then``, what to do next."""
    for_people("pre-deployment checklist", lambda: create_markdown_artifact(
        key=CHECKLIST_ARTIFACT_KEY, description="pre-deployment checklist",
        markdown=f"# Pre-deployment checklist not checked\n\n**Why:** {why}\n\n**Nothing was checked** "
                 f"{changed}. {then}."))


@contextmanager
def _verify_said_if_failed() -> Iterator[None]:
    """Write the checklist's artifact of a verify_infrastructure that failed (refused, the account
    unreadable, the synth or the checklist's reader failing) or was interrupted before it had
    items: such a run wrote none, and the key's newest was an earlier run's "passed", read as this
    run's verdict."""
    try:
        yield
    except ChecklistFailed:
        raise  # its items are the artifact already
    except Exception as err:
        _said_once(err, lambda: _checklist_not_checked(err, _VERIFY_CHANGED, _VERIFY_AGAIN))
        raise
    except BaseException as stop:
        # Cancelled or Ctrl-C before the checklist read anything (STS asked for the account, the
        # blocks loading); one during the synth or the checklist said so where it stopped.
        _said_once(stop, lambda: _verify_interrupted("before the checklist read AWS"))
        raise


# What verify_infrastructure does without a cdk_app_dir.
_NO_APP = "every stack and resource is read in the targets' region"


@flow(name="verify_infrastructure", log_prints=True)
@failures_writable  # the whole body: a failure holding text that is not UTF-8 is recorded
def verify_infrastructure(targets_block: str | None = None, aws_credentials_block: str | None = None,
                          cdk_app_dir: str | None = None, cdk_executable: str = "cdk",
                          synth_timeout_seconds: WaitSeconds = 600.0,
                          read_timeout_seconds: ReadSeconds = READ_SECONDS,
                          canary_header: str | None = None,
                          validation_spec: ValidationSpec | None = None) -> Checklist:
    """Check the pre-deployment checklist (reads only): the stacks, tables and indexes, queues and
    their DLQs, the dashboard, the alarms and the alert topic with a subscription; with
    ``canary_header`` (or ``validation_spec``'s), the listener rule pinning the validation's checks too.

    With ``cdk_app_dir``, the app is synthesized (``cdk synth``, no deploy) to read where each
    stack goes: a stack the app pins to another region is read there, and so is each table, queue,
    dashboard, alarm or topic its template names; one in another account fails its item as not
    readable with these credentials. Without it, everything is read in the targets' region.

    Args:
        targets_block: a saved RollwayTargets block; cleared: the deployment's block, if it has one; none: Webordinary's names.
        aws_credentials_block: a saved AwsCredentials block; cleared: the deployment's block, if it has one; none: boto3's default chain.
        cdk_app_dir: the CDK app, synthesized to read each stack in its own region; unset: the targets' region.
        cdk_executable: the cdk CLI (with ``cdk_app_dir``).
        synth_timeout_seconds: how long synthesizing the app may take.
        read_timeout_seconds: how long one read of AWS may take, retries included, before its item fails unanswered.
        canary_header: validate_deployment's spec.canary_header, when its checks are pinned: the listener rule pinning them is checked too; none: validation_spec's, when it sets one; else not checked.
        validation_spec: validate_deployment's spec: the rule pinning its checks (by its canary_header) is judged by the requests they send, as it judges it; none: by the weighted rule's requests.
    """
    log = get_run_logger()
    with _verify_said_if_failed():
        pinned_by, checks = _pinned(canary_header, validation_spec)  # refused before any block is read
        app_dir = executable = None
        if cdk_app_dir is not None:  # refused before any block is read or anything runs
            app_dir = _app_dir(cdk_app_dir, unset=_NO_APP)
            executable = resolve(cdk_executable, "install the AWS CDK CLI (npm install aws-cdk) or pass cdk_executable")
            try:
                check_cdk_executable(executable)
            except ValueError as err:
                raise InfraRefused(f"cdk_executable {cdk_executable!r}: {err}") from err
        targets = load_targets(targets_block)
        credentials = load_credentials(aws_credentials_block, targets.region)
        get_client = session_clients(credentials, targets.region, nothing="nothing was checked",
                                     read_seconds=read_timeout_seconds)
        # Read first also without the app: credentials that cannot read anything (none on the worker,
        # expired, an endpoint out of reach) failed every item alike, twenty lines of one error with
        # no remedy, each read first waiting out botocore's retries.
        account = _account(get_client, "nothing was checked", named=credentials_named(credentials))
        if app_dir is None or executable is None:
            log.info("no cdk_app_dir: every stack and resource is read in %s (pass cdk_app_dir to read what the app "
                     "deploys to another region there)", targets.region)
            return run_verify_infrastructure(checker_for(get_client, targets, read_seconds=read_timeout_seconds,
                                                         canary_header=pinned_by, checks=checks))
        home = StackEnvironment(account=account, region=targets.region)
        with CdkCli(executable, app_dir, lambda: cdk_environment(credentials, targets.region, account),
                    synth_timeout_seconds=synth_timeout_seconds) as cdk:
            stopped = "while synthesizing the CDK app (cdk synth was stopped)"
            with _said_if_interrupted(lambda: _verify_interrupted(stopped)):
                app = tasks.list_stacks(cdk)
        clients_in = regional_clients(credentials, get_client, targets.region, nothing="nothing was checked",
                                      read_seconds=read_timeout_seconds)
        return run_verify_infrastructure(checker_for(get_client, targets, app=app, home=home, clients_in=clients_in,
                                                     read_seconds=read_timeout_seconds, canary_header=pinned_by,
                                                     checks=checks))
