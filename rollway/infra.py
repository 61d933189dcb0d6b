"""The infrastructure deployment plan: which CDK stacks to deploy, in which order (pure).

The seed's "Step 1: Deploy Infrastructure" runs ``cdk deploy <Stack> --require-approval never``
once per stack, by hand, in an order a person has to keep right. ``plan_deployment`` takes the
stacks asked for (``Targets.stacks`` by default) and what the CDK app says each stack depends
on, and either refuses (an unknown stack, a dependency left out, a cycle) or returns the
stacks in an order where every stack comes after the ones it depends on; the order asked for
breaks ties, so a plan that already respects the dependencies runs exactly as written.
Resuming (``from_stack``), ``confirm_skipped`` keeps skipping only the stacks ordered before it
that CloudFormation shows deployed; the others are deployed too, each with why.

No I/O here: the CDK adapter (``rollway.toolchain.cdk``) reads the app, the flow acts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rollway.aws.regions import unknown_region
from rollway.cleanup import StackState, stack_moved
from rollway.errors_pickle import PicklableError
from rollway.targets import REGION

_FROZEN = ConfigDict(frozen=True)
TOOLKIT_STACK = "CDKToolkit"
"""The CDK toolkit stack's name, unless the app's cdk.json gives another (``toolkitStackName``)."""


class InfraError(RuntimeError):
    """Base of the errors the infrastructure deployment raises on purpose."""


class PlanRefused(InfraError, ValueError):
    """The stacks asked for cannot be deployed as asked; nothing was deployed."""


class AppNotListed(PicklableError, InfraError):
    """The CDK app could not be synthesized or read, so its stacks are not known.

    Attributes:
        tail: the last lines the tool printed (secrets masked).
    """

    def __init__(self, message: str, tail: Sequence[str] = ()) -> None:
        self.tail = tuple(tail)
        super().__init__(message)


class StackDeployFailed(PicklableError, InfraError):
    """``cdk deploy`` of one stack failed (or ran out of time).

    Attributes:
        stack: the stack that failed.
        reason: what cdk said went wrong, in a line or a few.
        tail: cdk's last lines of output (secrets masked).
        timed_out: True when it was stopped for running past its time; CloudFormation may
            still be working on the stack.
        interrupted: True when cdk was asked to stop (SIGTERM, SIGINT: the run cancelled, the
            worker shutting down): nothing of the stack failed, and CloudFormation may still be
            working on it.
    """

    def __init__(self, stack: str, reason: str, tail: Sequence[str] = (), *, timed_out: bool = False,
                 interrupted: bool = False) -> None:
        self.stack = stack
        self.reason = reason
        self.tail = tuple(tail)
        self.timed_out = timed_out
        self.interrupted = interrupted
        how = "was interrupted while cdk deployed it" if interrupted else "failed to deploy"
        super().__init__(f"stack {stack} {how}: {reason}")


class AppStacks(BaseModel):
    """The stacks a CDK app defines, each with the stacks it depends on (by stack name).

    Attributes:
        dependencies: stack -> the stacks it depends on.
        environments: stack -> the environment its manifest gives (``aws://<account>/<region>``,
            ``unknown-account``/``unknown-region`` for an environment-agnostic stack); a stack
            missing here is environment-agnostic.
        resources: stack -> kind (``table``, ``queue``, ``dashboard``, ``alarm``, ``topic``) ->
            the names its template gives the resources of that kind (``named_resources``); a
            stack missing here defines none the checklist looks for.
        construct_ids: a stack's construct id (or path) -> its CloudFormation name, where the app
            set a ``stackName`` of its own: a stack asked for by the former is refused naming the latter.
        bootstrap_versions: stack -> the toolkit version its manifest requires
            (``requiresBootstrapStackVersion``); a stack missing here needs no toolkit (one
            synthesized without the default synthesizer's bootstrap roles and bucket).
        toolkit_stack: the toolkit stack's name cdk deploys with (the app's cdk.json
            ``toolkitStackName``, else ``CDKToolkit``).
    """

    model_config = _FROZEN

    dependencies: dict[str, tuple[str, ...]]
    environments: dict[str, str] = Field(default_factory=dict)
    resources: dict[str, dict[str, tuple[str, ...]]] = Field(default_factory=dict)
    construct_ids: dict[str, str] = Field(default_factory=dict, description=(
        "what the app's code names a stack (its construct id or path, what `cdk deploy` takes) -> its "
        "CloudFormation name, for the stacks whose app set another stackName"))
    bootstrap_versions: dict[str, int] = Field(default_factory=dict)
    toolkit_stack: str = TOOLKIT_STACK

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.dependencies)


class DeployedStack(BaseModel):
    """One stack ``cdk deploy`` finished, as its output told it."""

    model_config = _FROZEN

    stack: str
    seconds: float = Field(ge=0)
    arn: str | None = None
    outputs: dict[str, str] = Field(default_factory=dict)
    unchanged: bool = Field(default=False, description="cdk found nothing to change: the stack was up to date")


# A stack in one of these was deployed: its last operation finished and what it applied stands.
# UPDATE_ROLLBACK_COMPLETE is stable, but its last update was undone: the account runs the version
# before the one the earlier run set out to deploy (the checklist fails it too), so a resume deploys
# it again rather than skip it; a deploy that changes nothing is cheap and safe.
DEPLOYED_STATUSES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
# Why a stack before from_stack is deployed after all, by the status CloudFormation gave.
_NOT_DEPLOYED_WHY = {
    None: "it does not exist",
    "DELETE_COMPLETE": "it was deleted (DELETE_COMPLETE)",
    "ROLLBACK_COMPLETE": "its creation failed and was rolled back (ROLLBACK_COMPLETE)",
    "UPDATE_ROLLBACK_COMPLETE": "its last update was rolled back (UPDATE_ROLLBACK_COMPLETE): the account runs "
                                "the version before it",
    "REVIEW_IN_PROGRESS": "it was never created: only a change set waits for review (REVIEW_IN_PROGRESS)",
    "IMPORT_ROLLBACK_COMPLETE": "an import of resources into it was rolled back (IMPORT_ROLLBACK_COMPLETE): it runs "
                                "what it ran before that import",
}


class AddedBack(BaseModel):
    """A stack before ``from_stack`` that CloudFormation does not show as deployed, so the resumed
    run deploys it after all.

    Attributes:
        stack: the stack.
        status: what CloudFormation said (None: no such stack, or ``unread``).
        reason: why it counts as not deployed, in words.
    """

    model_config = _FROZEN

    stack: str
    status: str | None
    reason: str


class DeploymentPlan(BaseModel):
    """The stacks to deploy, in order, and those counted as done before the run starts.

    Attributes:
        order: every stack of the plan, in deployment order.
        skipped: the stacks before ``from_stack`` (resuming) counted as deployed by an earlier run.
        added: stacks before ``from_stack`` deployed all the same, because CloudFormation does not
            show them deployed (``confirm_skipped``); in ``to_deploy``, not in ``skipped``.
        to_deploy: the stacks this run deploys, in order (dependency order, ``added`` included).
        reordered: True when the dependencies changed the order asked for.
    """

    model_config = _FROZEN

    order: tuple[str, ...]
    skipped: tuple[str, ...] = ()
    added: tuple[AddedBack, ...] = ()
    reordered: bool = False

    @property
    def to_deploy(self) -> tuple[str, ...]:
        skipped = set(self.skipped)
        return tuple(s for s in self.order if s not in skipped)


def plan_deployment(
    requested: Sequence[str],
    app: AppStacks | Mapping[str, Sequence[str]],
    *,
    from_stack: str | None = None,
    already_deployed: Sequence[str] = (),
) -> DeploymentPlan:
    """Order ``requested`` by the app's dependencies, or refuse.

    Args:
        requested: the stacks to deploy, in the order asked for (the tie-break).
        app: the app's stacks and what each depends on.
        from_stack: resume here: the stacks ordered before it are counted as done.
        already_deployed: stacks outside the plan a person says are deployed, so stacks of
            the plan may depend on them.

    Returns:
        The plan.

    Raises:
        PlanRefused: no stacks, a stack named twice, a stack the app does not define (with the
            closest name it does), a stack depending on one neither in the plan nor named as
            already deployed, a dependency cycle, or a ``from_stack`` outside the plan.
    """
    dependencies = app.dependencies if isinstance(app, AppStacks) else {k: tuple(v) for k, v in app.items()}
    construct_ids = app.construct_ids if isinstance(app, AppStacks) else {}
    requested = list(requested)
    check_request(requested, from_stack=from_stack, already_deployed=already_deployed)
    unknown = [s for s in [*requested, *already_deployed] if s not in dependencies]
    if unknown:
        raise PlanRefused(
            "the CDK app defines no stack "
            + "; ".join(_construct_hint(s, construct_ids) or _with_hint(s, dependencies) for s in unknown)
            + f" (its stacks: {', '.join(dependencies) or 'none'})"
        )
    in_plan, done = set(requested), set(already_deployed)
    missing = [
        f"{stack} depends on {dep}"
        for stack in requested for dep in dependencies[stack] if dep not in in_plan and dep not in done
    ]
    if missing:
        raise PlanRefused(
            "; ".join(missing) + ", which is neither in the plan nor named as already deployed: add it to the "
            "stacks to deploy, or to already_deployed if it is deployed"
        )
    order = _ordered(requested, {s: [d for d in dependencies[s] if d in in_plan] for s in requested})
    skipped: tuple[str, ...] = ()
    if from_stack is not None:
        skipped = order[:order.index(from_stack)]
    return DeploymentPlan(order=order, skipped=skipped, reordered=list(order) != requested)


def confirm_skipped(plan: DeploymentPlan, statuses: Mapping[str, str | None]) -> DeploymentPlan:
    """Keep skipping only the stacks before ``from_stack`` that CloudFormation shows deployed.

    A resume counts the stacks ordered before ``from_stack`` as deployed by an earlier run; the app
    may have gained a dependency since (a new stack ordered early), or a stack may have been
    deleted or rolled back. Those are deployed after all, in dependency order, each with why.

    Args:
        plan: the plan as ``plan_deployment`` made it.
        statuses: skipped stack -> its CloudFormation status, None when it does not exist; a stack
            missing from the mapping was not read (e.g. in an account the run cannot read) and is
            deployed again to be sure.

    Returns:
        The plan with the stacks not deployed moved from ``skipped`` to ``added``.

    Raises:
        PlanRefused: a stack before ``from_stack`` is still being changed (``*_IN_PROGRESS``):
            deploying over it would fail; nothing was deployed.
    """
    if busy := _busy(plan.skipped, statuses):
        raise PlanRefused(f"{busy}: CloudFormation is still working on it; wait until it is no longer "
                          "IN_PROGRESS, then resume (nothing was deployed)")
    added: list[AddedBack] = []
    for stack in plan.skipped:
        if stack not in statuses:
            added.append(AddedBack(stack=stack, status="unread",
                                   reason="its status was not read: deployed again to be sure"))
            continue
        status = statuses[stack]
        if status in DEPLOYED_STATUSES:
            continue
        why = _NOT_DEPLOYED_WHY.get(status, f"it is {status}, not deployed")
        added.append(AddedBack(stack=stack, status=status, reason=why))
    if not added:
        return plan
    again = {a.stack for a in added}
    return plan.model_copy(update={"skipped": tuple(s for s in plan.skipped if s not in again),
                                   "added": (*plan.added, *added)})


def check_not_changing(statuses: Mapping[str, str | None]) -> None:
    """Refuse a run whose stacks to deploy CloudFormation is still changing.

    cdk deploys over a stack without waiting for it: CloudFormation refuses the update of a stack
    ``*_IN_PROGRESS`` ("can not be updated"), so a run resumed (or run again) at once after a
    deploy stopped at its timeout failed there, after deploying again the stacks before it.

    Args:
        statuses: stack to deploy -> its CloudFormation status (None: it does not exist); one
            not read is not judged.

    Raises:
        PlanRefused: naming each such stack and its status; nothing was deployed.
    """
    if busy := _busy(list(statuses), statuses):
        raise PlanRefused(f"{busy}: CloudFormation is still working on it (cdk's deploy would be refused); wait until "
                          "it is no longer IN_PROGRESS, then run again (nothing was deployed)")


# Stacks cdk cannot deploy over until a person acts: CloudFormation refuses their update ("is in
# UPDATE_ROLLBACK_FAILED state and can not be updated"), and over a stack a ``--no-rollback`` deploy
# left paused (CREATE_FAILED, UPDATE_FAILED) cdk asks to roll it back first, a question a run with
# no terminal cannot answer. Each with what to do: {name} and {region} are the stack's.
_ROLL_BACK_PAUSED = ("a deploy with --no-rollback left it paused half-way, and cdk's deploy would ask to roll it "
                     "back first, which this run cannot answer: roll it back (aws cloudformation rollback-stack "
                     "--stack-name {name}{region})")
STUCK_REMEDIES = {
    "UPDATE_ROLLBACK_FAILED": "its last update failed and so did the rollback, and CloudFormation takes no update "
                              "until the rollback is finished: finish it (aws cloudformation continue-update-rollback "
                              "--stack-name {name}{region}; add --resources-to-skip <logical id> for a resource its "
                              "events say cannot roll back)",
    "CREATE_FAILED": _ROLL_BACK_PAUSED,
    "UPDATE_FAILED": _ROLL_BACK_PAUSED,
    # cdk deletes a stack whose creation failed before creating it again (its isCreationFailure); after a
    # failed rollback, that deletion retries what the rollback could not do, and failed there as a rule,
    # after the stacks before it were deployed: the deletion is a person's, who reads why first.
    "ROLLBACK_FAILED": "its creation failed and so did its rollback: cdk would delete it before creating it again, "
                       "which fails where the rollback did unless its cause is gone; delete it (aws cloudformation "
                       "delete-stack --stack-name {name}{region}; should that end DELETE_FAILED, delete it again with "
                       "--retain-resources <the logical ids its events say could not be deleted>, and remove those by "
                       "hand)",
    "DELETE_FAILED": "its deletion failed half-way, and CloudFormation takes no update of it: delete it again (aws "
                     "cloudformation delete-stack --stack-name {name}{region} --retain-resources <the logical ids "
                     "its events say could not be deleted>)",
    # CloudFormation has no call finishing an import's rollback as ContinueUpdateRollback finishes an
    # update's (that one is for UPDATE_ROLLBACK_FAILED alone): the events say what to fix by hand.
    "IMPORT_ROLLBACK_FAILED": "an import of existing resources into it failed and so did the rollback of that import, "
                              "and CloudFormation takes no update of it: find the resources whose rollback failed in "
                              "its events (aws cloudformation describe-stack-events --stack-name {name}{region}) and "
                              "resolve them in the CloudFormation console, or delete the stack (aws cloudformation "
                              "delete-stack --stack-name {name}{region}; resources whose DeletionPolicy is Retain "
                              "are kept)",
}


def stuck_remedy(status: str | None, name: str, region: str | None = None) -> str | None:
    """Why cdk cannot deploy over stack ``name`` in ``status``, and the command that frees it
    (``--region`` given when ``region`` is); None when cdk can."""
    remedy = STUCK_REMEDIES.get(status or "")
    return None if remedy is None else remedy.format(name=name, region=f" --region {region}" if region else "")


def check_not_stuck(statuses: Mapping[str, str | None], regions: Mapping[str, str] | None = None, *,
                    reasons: Mapping[str, str | None] | None = None) -> None:
    """Refuse a run whose stacks to deploy CloudFormation takes no deploy of (``STUCK_REMEDIES``).

    cdk's deploy of such a stack failed only when the run reached it, after deploying the stacks
    before it, with cdk's words ("terminal (TTY) is not attached", "can not be updated") and a
    resume "once it is fixed" that named no fix.

    Args:
        statuses: stack to deploy -> its CloudFormation status (None: it does not exist).
        regions: stack -> its region, named in the commands.
        reasons: stack -> CloudFormation's StackStatusReason, given with its status: which
            resource failed, and why.

    Raises:
        PlanRefused: naming each such stack, its status (with CloudFormation's reason) and the
            command that frees it; nothing was deployed.
    """
    stuck = [f"{stack} is {status}{_said_by_cloudformation((reasons or {}).get(stack))}: {remedy}"
             for stack, status in statuses.items()
             if (remedy := stuck_remedy(status, stack, (regions or {}).get(stack))) is not None]
    if stuck:
        raise PlanRefused("; ".join(stuck) + "; then run again (nothing was deployed)")


def recreated(states: Mapping[str, StackState], regions: Mapping[str, str] | None = None) -> list[str]:
    """What a deploy over each of ``states`` whose creation was rolled back (ROLLBACK_COMPLETE)
    does, one line each, said before it: cdk deletes such a stack and creates it again (aws-cdk's
    ``isCreationFailure``), with no word of its own but its progress, and the events saying why
    its creation failed go with the deleted stack, read from then on by its stack id alone."""
    lines = []
    for stack, state in states.items():
        if state.status != "ROLLBACK_COMPLETE":
            continue
        region = f" --region {regions[stack]}" if regions and stack in regions else ""
        lines.append(f"{stack} is ROLLBACK_COMPLETE{_said_by_cloudformation(state.status_reason)}: its creation failed "
                     "and was rolled back, so cdk deletes it and creates it again; its events, which say why its "
                     "creation failed, go with the deleted stack and are read by its stack id from then on (aws "
                     f"cloudformation describe-stack-events --stack-name {state.stack_id or stack}{region})")
    return lines


def _said_by_cloudformation(reason: str | None) -> str:
    """`` (CloudFormation says: <reason>)``, or "" when it gives none."""
    return f" (CloudFormation says: {reason.strip()})" if reason and reason.strip() else ""


def changing(status: str | None) -> bool:
    """Whether CloudFormation is changing a stack in ``status`` (``*_IN_PROGRESS``), so that it
    takes no deploy until it is done: a change set waiting for review (REVIEW_IN_PROGRESS)
    changes nothing yet."""
    return (status or "").endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"


def _busy(stacks: Sequence[str], statuses: Mapping[str, str | None]) -> str:
    """``<stack> is <status>`` for each of ``stacks`` CloudFormation is changing ("" when none)."""
    return "; ".join(f"{s} is {statuses[s]}" for s in stacks if changing(statuses.get(s)))


def changed_stacks(stacks: Sequence[str], before: Mapping[str, StackState],
                   after: Mapping[str, StackState]) -> tuple[str, ...]:
    """Those of ``stacks`` CloudFormation shows changed between a read before the run's deploys
    (``before``) and one after (``after``), each read with its newest event: made, made again
    (another stack id), or another status, LastUpdatedTime or newest event (``stack_moved``, which
    the clean-up reads too), or termination protection turned on
    or off: cdk applies a stack's changed ``terminationProtection`` with UpdateTerminationProtection,
    which adds no event and moves neither status nor LastUpdatedTime, then says "(no changes)" of
    a template as it was (aws-cdk's deploy-stack ``updateTerminationProtection``).

    Only a stack in both reads is judged: one missing from either (not read: another account, a
    read that failed) is neither changed nor unchanged, and the deploy says so of it apart
    ("not known whether this run changed it"). One ``cdk deploy`` failed before CloudFormation
    started (a synth, asset or credentials error), or deployed with no change, is the same stack
    in both reads.
    """
    return tuple(s for s in stacks if s in before and s in after and (
        stack_moved(before[s], after[s]) or before[s].termination_protection != after[s].termination_protection))


# A stack in one of these has no version deployed (it was never created, or is being or was
# deleted): the stacks depending on it would fail on its missing exports.
_NOTHING_DEPLOYED = frozenset({"CREATE_IN_PROGRESS", "CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED",
                               "ROLLBACK_COMPLETE", "DELETE_IN_PROGRESS", "DELETE_FAILED", "DELETE_COMPLETE",
                               "REVIEW_IN_PROGRESS"})


def check_already_deployed(statuses: Mapping[str, str | None]) -> None:
    """Refuse ``already_deployed`` stacks that CloudFormation shows with nothing deployed.

    Args:
        statuses: stack named as already deployed -> its CloudFormation status, None when it does
            not exist; a stack missing from the mapping was not read (another account) and is
            taken at its word.

    Raises:
        PlanRefused: naming each such stack and its status; nothing was deployed.
    """
    absent = [f"{stack} ({'does not exist' if status is None else status})" for stack, status in statuses.items()
              if status is None or status in _NOTHING_DEPLOYED]
    if absent:
        raise PlanRefused(f"named as already deployed, but CloudFormation shows nothing deployed: {', '.join(absent)}; "
                          "deploy them in this run (add them to the stacks to deploy) or wait until they are "
                          "(nothing was deployed)")


# The syntax of Targets.region (us-west-2, us-gov-west-1, ...): a check, not a list of regions.
_ACCOUNT = re.compile(r"^\d{12}$")
_ENVIRONMENT = re.compile(r"^aws://(?P<account>[^/]+)/(?P<region>[^/]+)$")
UNKNOWN_ACCOUNT, UNKNOWN_REGION = "unknown-account", "unknown-region"


class StackEnvironment(BaseModel):
    """Where a stack goes: an account and a region (what ``cdk bootstrap`` prepares)."""

    model_config = _FROZEN

    account: str = Field(pattern=_ACCOUNT.pattern)
    region: str = Field(pattern=REGION.pattern)

    @property
    def uri(self) -> str:
        return f"aws://{self.account}/{self.region}"


def stack_environments(app: AppStacks, stacks: Sequence[str], home: StackEnvironment) -> dict[str, StackEnvironment]:
    """Each stack's environment, the unknown parts taken from ``home`` (the account deployed to
    and ``Targets.region``), checked before any tool acts on them.

    Raises:
        PlanRefused: a stack's environment is not ``aws://<12-digit account>/<region>``, or the
            app pins a stack to a region AWS does not have (``unknown_region``).
    """
    found: dict[str, StackEnvironment] = {}
    bad: list[str] = []
    unknown: list[str] = []
    for stack in stacks:
        raw = app.environments.get(stack, f"aws://{UNKNOWN_ACCOUNT}/{UNKNOWN_REGION}")
        # Whole matches: "$" also matches before a trailing newline.
        match = _ENVIRONMENT.fullmatch(raw)
        account = match and (home.account if match["account"] == UNKNOWN_ACCOUNT else match["account"])
        region = match and (home.region if match["region"] == UNKNOWN_REGION else match["region"])
        if not match or not _ACCOUNT.fullmatch(account or "") or not REGION.fullmatch(region or ""):
            bad.append(f"{stack} ({raw!r})")
            continue
        # A misspelt region the app pins a stack to (eu-wset-1) was found only when its session
        # was made, and told to fix the targets' region, which was right. Leniently, as the
        # targets' own region is checked: a name of no partition's form may be an AWS-compatible
        # endpoint's, which the credentials' check then judges.
        if match["region"] != UNKNOWN_REGION and (why := unknown_region(region, custom_endpoint=True)):
            unknown.append(f"{stack} ({raw}: {why})")
            continue
        found[stack] = StackEnvironment(account=account, region=region)
    if bad:
        raise PlanRefused("stacks whose environment is not aws://<12-digit account>/<region like us-west-2>: "
                          + ", ".join(bad) + "; fix the env of these stacks in the CDK app (nothing was deployed)")
    if unknown:
        raise PlanRefused("the CDK app pins stacks to a region AWS does not have: " + ", ".join(unknown)
                          + "; fix the region in the env of these stacks in the CDK app (the targets' region, "
                          f"{home.region}, is not at fault; nothing was deployed)")
    return found


def environment_of(uri: str) -> StackEnvironment | None:
    """``aws://<12-digit account>/<region>``, whole, as a StackEnvironment; None when it is not."""
    match = _ENVIRONMENT.fullmatch(uri)
    if not match or not _ACCOUNT.fullmatch(match["account"]) or not REGION.fullmatch(match["region"]):
        return None
    return StackEnvironment(account=match["account"], region=match["region"])


def trust_command(environment: StackEnvironment, trusted_account: str) -> str:
    """The ``cdk bootstrap`` a person runs with ``environment``'s own credentials so that
    ``trusted_account`` may deploy there through its CDK roles (cdk requires the policies the
    deploying role gets whenever ``--trust`` is given)."""
    return (f"cdk bootstrap {environment.uri} --trust {trusted_account} "
            "--cloudformation-execution-policies <ARN of the managed policy its stacks need>")


def bootstrap_environments(app: AppStacks, stacks: Sequence[str],
                           home: StackEnvironment) -> tuple[StackEnvironment, ...]:
    """The distinct environments ``stacks`` go to, each once, in the order of the first stack
    going there: what ``cdk bootstrap`` must prepare before they deploy.

    Raises:
        PlanRefused: as ``stack_environments``.
    """
    return tuple(dict.fromkeys(stack_environments(app, stacks, home).values()))


# A toolkit stack in one of these holds no toolkit: cdk takes a failed creation for none, and
# ``cdk bootstrap`` deletes it and creates it again.
_NO_TOOLKIT = frozenset({None, "DELETE_COMPLETE", "REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})
# Stuck, but the roles and bucket of its last good version stand: cdk deploys through them. Only
# a bootstrap, which CloudFormation would refuse to apply, is stopped by them.
_TOOLKIT_STANDS = frozenset({"UPDATE_ROLLBACK_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_FAILED"})


def check_toolkits(found: Mapping[StackEnvironment, StackState], needed_by: Mapping[StackEnvironment, Sequence[str]],
                   *, name: str = TOOLKIT_STACK, bootstrapping: Iterable[StackEnvironment] = (),
                   versions: Mapping[StackEnvironment, int] | None = None,
                   required: Mapping[StackEnvironment, int] | None = None) -> None:
    """Refuse a run whose deploys (or bootstraps) the CDK toolkit stack of their environment stops.

    cdk publishes a stack's assets and checks its bootstrap version through that stack; missing,
    half-deleted or still changing, the deploy of the first stack going there failed with cdk's
    words ("Has the environment been bootstrapped?"), after the stacks before it were deployed.

    Args:
        found: environment -> its toolkit stack as DescribeStacks shows it (status None: there is
            none); an environment missing here was not read, and is left to cdk.
        needed_by: environment -> the stacks to deploy there whose templates require a bootstrap
            version (``AppStacks.bootstrap_versions``).
        name: the toolkit stack's name.
        bootstrapping: the environments this run bootstraps before its first deploy: one with no
            toolkit yet gets it then, and one too old is brought up to date.
        versions: environment -> its toolkit's bootstrap version (its ``BootstrapVersion``
            output); one missing is not judged.
        required: environment -> the highest version its stacks of ``needed_by`` require.

    Raises:
        PlanRefused: naming each such toolkit stack, its environment, status (with CloudFormation's
            reason), the stacks needing it and what frees it; nothing was deployed.
    """
    bootstrapping = set(bootstrapping)
    refused: list[str] = []
    for environment in dict.fromkeys([*needed_by, *bootstrapping]):
        state = found.get(environment)
        if state is None:
            continue
        status = state.status
        needing = tuple(needed_by.get(environment, ()))
        toolkit = f"the CDK toolkit stack {name} of {environment.uri}"
        shown = "does not exist" if status in (None, "DELETE_COMPLETE") else (
            f"is {status}{_said_by_cloudformation(state.status_reason)}")
        bootstrap = (f"bootstrap it (cdk bootstrap {environment.uri}, with credentials that may create its roles and "
                     "bucket, or run again with bootstrap=true)")
        if _busy([name], {name: status}):
            refused.append(f"{toolkit} {shown}: CloudFormation is still working on it; wait until it is no longer "
                           "IN_PROGRESS, then run again")
        elif status not in _NO_TOOLKIT and (remedy := stuck_remedy(status, name, environment.region)) is not None:
            if environment in bootstrapping or status not in _TOOLKIT_STANDS:
                refused.append(f"{toolkit} {shown}: {remedy}; " + (
                    "then run again" if status in _TOOLKIT_STANDS else f"once CloudFormation is done, {bootstrap}"))
        elif status in _NO_TOOLKIT and needing and environment not in bootstrapping:
            refused.append(f"{toolkit} {shown}, and {', '.join(needing)} {'needs' if len(needing) == 1 else 'need'} "
                           f"it (cdk publishes {'its' if len(needing) == 1 else 'their'} assets and checks "
                           f"{'its' if len(needing) == 1 else 'their'} bootstrap version through it): "
                           f"{bootstrap}; if it was bootstrapped under another stack name, give that name as "
                           "toolkitStackName in the app's cdk.json")
        elif (needing and environment not in bootstrapping and (version := (versions or {}).get(environment)) is not None
              and version < (wanted := (required or {}).get(environment, 0))):
            # cdk's "requires bootstrap stack version 6, found 5" came at the first stack going there.
            refused.append(f"{toolkit} is at bootstrap version {version}, and {', '.join(needing)} "
                           f"{'requires' if len(needing) == 1 else 'require'} version {wanted}: "
                           f"{bootstrap.replace('bootstrap it', 'bootstrap it again', 1)}")
    if refused:
        raise PlanRefused("; ".join(refused) + " (nothing was deployed)")


# The resources the checklist reads, by CloudFormation type: (their kind, the property naming them).
_NAMED_BY = {
    "AWS::DynamoDB::Table": ("table", "TableName"),
    "AWS::DynamoDB::GlobalTable": ("table", "TableName"),
    "AWS::SQS::Queue": ("queue", "QueueName"),
    "AWS::CloudWatch::Dashboard": ("dashboard", "DashboardName"),
    "AWS::CloudWatch::Alarm": ("alarm", "AlarmName"),
    "AWS::CloudWatch::CompositeAlarm": ("alarm", "AlarmName"),
    "AWS::SNS::Topic": ("topic", "TopicName"),
}


def named_resources(template: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """kind (``table``, ``queue``, ``dashboard``, ``alarm``, ``topic``) -> the names a synthesized
    CloudFormation template gives its resources of that kind, in the template's order.

    Only names written out: a name CloudFormation generates, or one the template builds with an
    intrinsic function (``{"Fn::Join": ...}``, ``{"Ref": ...}``), is not known before the deploy,
    so it cannot be matched to a name of ``Targets`` and is left out.
    """
    found: dict[str, list[str]] = {}
    resources = template.get("Resources") if isinstance(template, Mapping) else None
    for resource in (resources or {}).values() if isinstance(resources, Mapping) else ():
        if not isinstance(resource, Mapping) or resource.get("Type") not in _NAMED_BY:
            continue
        kind, prop = _NAMED_BY[resource["Type"]]
        name = (resource.get("Properties") or {}).get(prop) if isinstance(resource.get("Properties"), Mapping) else None
        if isinstance(name, str) and name:
            found.setdefault(kind, []).append(name)
    return {kind: tuple(dict.fromkeys(names)) for kind, names in found.items()}


class ResourcePlace(BaseModel):
    """Where the checklist reads one resource: the stack whose template names it, and where that
    stack goes."""

    model_config = _FROZEN

    stack: str
    environment: StackEnvironment


def resource_places(app: AppStacks, wanted: Iterable[tuple[str, str]],
                    home: StackEnvironment) -> dict[tuple[str, str], ResourcePlace]:
    """(kind, name) -> the stack of the app that defines it and that stack's environment, for each
    of ``wanted`` some stack's template names (``AppStacks.resources``). One no stack names is
    left out: it is read in ``Targets.region``.

    When several stacks name it (a table of the same name in two regions), the one going to
    ``home`` wins, since that is the one the service in ``Targets.region`` uses; otherwise the
    first in the manifest's order.

    Raises:
        PlanRefused: a stack defining one of them has a malformed environment (``stack_environments``).
    """
    wanted = set(wanted)
    defining: dict[tuple[str, str], list[str]] = {}
    for stack, kinds in app.resources.items():
        for kind, names in kinds.items():
            for name in names:
                if (kind, name) in wanted:
                    defining.setdefault((kind, name), []).append(stack)
    environments = stack_environments(app, list(dict.fromkeys(s for ss in defining.values() for s in ss)), home)
    places: dict[tuple[str, str], ResourcePlace] = {}
    for key, stacks in defining.items():
        chosen = next((s for s in stacks if environments[s] == home), stacks[0])
        places[key] = ResourcePlace(stack=chosen, environment=environments[chosen])
    return places


def check_request(requested: Sequence[str], *, from_stack: str | None = None,
                  already_deployed: Sequence[str] = ()) -> None:
    """What can be refused before the app is read: no stacks, a stack named twice, a stack both
    to deploy and already deployed, a ``from_stack`` that is not one of the stacks to deploy.

    Raises:
        PlanRefused: naming what is wrong.
    """
    requested = list(requested)
    if not requested:
        raise PlanRefused("no stacks to deploy: name at least one")
    twice = sorted({s for s in [*requested, *already_deployed] if [*requested, *already_deployed].count(s) > 1})
    if twice:
        raise PlanRefused(f"stacks named more than once (to deploy or as already deployed): {', '.join(twice)}")
    if from_stack is not None and from_stack not in requested:
        raise PlanRefused(f"from_stack {_with_hint(from_stack, requested)} is not one of the stacks to deploy "
                          f"({', '.join(requested)})")


def _ordered(requested: list[str], needs: dict[str, list[str]]) -> tuple[str, ...]:
    """Kahn's algorithm, always taking the earliest stack (in the order asked for) that is ready."""
    rank = {s: i for i, s in enumerate(requested)}
    waiting = {s: set(d) for s, d in needs.items()}
    order: list[str] = []
    while waiting:
        ready = [s for s, deps in waiting.items() if not deps]
        if not ready:
            raise PlanRefused(f"the stacks depend on each other in a cycle: {_cycle(waiting)}, so none of them can be "
                              "deployed first; break the cycle in the CDK app (a stack's addDependency, or a value one "
                              "stack takes from another, which cdk makes an export and an import) (nothing was "
                              "deployed)")
        stack = min(ready, key=rank.__getitem__)
        order.append(stack)
        del waiting[stack]
        for deps in waiting.values():
            deps.discard(stack)
    return tuple(order)


def _cycle(waiting: dict[str, set[str]]) -> str:
    """One cycle among the stacks left waiting, as ``A depends on B, B on A``: arrows (``A -> B -> A``)
    read as a deploy order as well as a dependency."""
    stack = min(waiting)
    path: list[str] = []
    while stack not in path:
        path.append(stack)
        stack = min(waiting[stack])
    cycle = [*path[path.index(stack):], stack]
    return ", ".join(f"{a} depends on {b}" if i == 0 else f"{a} on {b}" for i, (a, b) in enumerate(zip(cycle, cycle[1:])))


def _construct_hint(name: str, construct_ids: Mapping[str, str]) -> str | None:
    """``name`` with the CloudFormation name of the stack it is the construct id of, or None."""
    hint = construct_id_hint(name, construct_ids)
    return None if hint is None else f"{name!r} ({hint})"


def construct_id_hint(name: str, construct_ids: Mapping[str, str]) -> str | None:
    """What ``name`` is, when it is the construct id of a stack the app gives another
    CloudFormation name (``AppStacks.construct_ids``); None otherwise.

    `cdk deploy` takes a stack's construct id, so that is what a hand-run deploy (the seed's
    `cdk deploy WebordinarySQSStack`) names; an app that sets stackName gives its stack another
    name, which rollway plans, deploys and checks by: the plan's refusal and the checklist's
    "does not exist" both listed it with no link.
    """
    if name not in construct_ids:
        return None
    return (f"that is the construct id of the stack whose CloudFormation name is {construct_ids[name]!r}: "
            "name stacks by their CloudFormation name")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean '<the closest of known>'?)``, or "" when none is close to ``name``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _with_hint(name: str, known: Sequence[str] | Mapping[str, object]) -> str:
    return f"{name!r}{did_you_mean(name, known)}"
