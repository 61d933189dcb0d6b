"""Build a flow's Environment from Prefect blocks: the only place flows reach for clients.

Flows take block *names* as parameters so a run triggered from the UI stores nothing secret;
the blocks are loaded inside the run (no I/O at import time).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from prefect.context import FlowRunContext
from prefect_aws import AwsCredentials

from blocks.credentials import SessionClients, client_factory, credentials_named, in_block
from blocks.saved import unsaved_block
from blocks.targets import RollwayTargets
from flows.parameter_errors import say_parameter_errors
from flows.untraced import without_traceback
from rollway.api_error import request_left_out
from rollway.aws.environment import aws_environment
from rollway.aws.errors import (UNKNOWN_CREDENTIALS, aws_message, credentials_remedy, error_code,
                                request_out_of_date, unusable_credentials)
from rollway.clock import ClockSettings
from rollway.environment import Environment
from rollway.failure_words import error_said
from rollway.ledger import OWNER_PREFIX, RolloutInProgress, utc, wall_utc
from rollway.preflight_checks import account_refusal
from rollway.targets import Targets
from rollway.url_passwords import passwords_hidden


# Every flow module imports this one: each run's parameter errors say what was given (flows.parameter_errors).
say_parameter_errors()


class AccountNotLoaded(ValueError):
    """The run's blocks could not be loaded, or disagree: it stopped before any AWS call."""


class CredentialsRefused(AccountNotLoaded, RuntimeError):
    """The credentials block could not be made into an AWS session: STS would not let it assume
    its role (or could not be reached), or its profile is not on the worker. The run stopped
    before any other AWS call, so before any write. The message says which, AWS's or botocore's
    own words, what was not done and what to change."""


def session_clients(credentials: AwsCredentials, region: str, *, nothing: str = "nothing was changed",
                    why: str = "", read_seconds: float | None = None) -> Callable[[str], Any]:
    """The run's client factory (``blocks.credentials.client_factory``) on ``credentials``, whose
    clients act in ``region``: the one place every flow gets its AWS session from.

    ``nothing``: what the run did not do, for the message ("nothing was deployed"). ``why``: for
    a session beside the run's own, where and what for (" in eu-west-1, to read ..."), said
    after the call that failed. ``read_seconds``: for clients that only read, how long one call
    may take, all its attempts together; None for the rollout's clients (``client_factory``).

    Raises:
        AccountNotLoaded: the block disagrees with the targets (its region, a session token), or
            ``read_seconds`` is not a read's bound.
        CredentialsRefused: the block's role could not be assumed (STS AssumeRole, made as the
            factory is built), or its profile is not on the worker. Every flow but the
            infrastructure ones ended on boto's bare error and traceback (``AccessDenied``,
            ``Could not connect to the endpoint URL``), naming no call and no remedy. Without a
            role: STS GetCallerIdentity says AWS takes the credentials for no call (expired or
            unknown keys) or refused the request for its date (the worker's clock), or the block's
            endpoint_url cannot be reached (``_prove``).
    """
    # Findings whose one line says everything: the run's log shows no traceback of rollway under them.
    without_traceback(AccountNotLoaded)
    try:
        get_client = client_factory(credentials, region=region, read_seconds=read_seconds)
    except ValueError as err:
        raise AccountNotLoaded(f"{err} ({why.lstrip()})" if why else str(err)) from err
    except (ClientError, BotoCoreError) as err:
        # AWS's words name no block: which one to fix is said here ("the AWS credentials block 'release'").
        named = credentials_named(credentials)
        if credentials.assume_role_arn:
            raise CredentialsRefused(
                f"could not assume the role {credentials.assume_role_arn} of {named} (STS AssumeRole{why}): "
                f"{aws_message(err)}; {nothing}; {_remedy(err, 'sts:AssumeRole on that role', why)}") from err
        loading = f" ({why.lstrip()})" if why else ""
        raise CredentialsRefused(f"could not load {named}{loading}: {aws_message(err)}; {nothing}; "
                                 f"{credentials_remedy(err, 'access')}") from err
    if not credentials.assume_role_arn:  # AssumeRole, made above, has proved the keys already
        _prove(get_client, credentials, nothing, why)
    return get_client


def session_in_region(credentials: AwsCredentials, region: str, *, why: str,
                      nothing: str = "nothing was changed", read_seconds: float | None = None) -> Callable[[str], Any]:
    """``session_clients`` on the run's ``credentials`` in ``region``, another than the targets'
    (a stack the CDK app pins elsewhere, a shared-services registry); ``why`` as there.

    The region is set on a copy of the block: ``client_factory`` refuses a block naming
    Targets.region for any other region (it guards the rollout's clients against acting on
    another region's service), and the block saved by ``rollway up`` names it."""
    return session_clients(credentials.model_copy(update={"region_name": region}), region, nothing=nothing, why=why,
                           read_seconds=read_seconds)

def _remedy(err: Exception, call: str, why: str) -> str:
    """What to change (``credentials_remedy``). For a session beside the run's own (``why``),
    whose keys the run's own session has proved: AWS answers keys it "does not know" in a region
    the account has not enabled (an opt-in region), which checking the keys would not fix."""
    if why and isinstance(err, ClientError) and error_code(err) in UNKNOWN_CREDENTIALS:
        return ("these keys work in the targets' region: the account has likely not enabled this one (an opt-in "
                "region: enable it in the AWS console's Account settings), then run again")
    return credentials_remedy(err, call)


def _prove(get_client: SessionClients, credentials: AwsCredentials, nothing: str, why: str) -> None:
    """Ask STS who the credentials are (GetCallerIdentity: no IAM permission needed), so that keys
    AWS takes for no call stop the run now, before it changes anything.

    Expired or unknown keys, or an endpoint_url out of reach, were found by the run's first real
    call, as an adapter's error in the middle of its work (a rollout's first shift, or a task's
    retries). STS alone out of reach with AWS's own endpoints (a worker reaching AWS only
    through VPC endpoints, none for STS) proves nothing about the other services: the run goes
    on, and the log says the credentials were not checked.

    Raises:
        CredentialsRefused: AWS takes the credentials for no call, refused the request for its
            date (the worker's clock), or the endpoint_url every call goes to cannot be reached.
    """
    try:
        get_client.caller_identity()
    except (ClientError, BotoCoreError) as err:
        # A request refused for its date did not check the keys; on a clock that far off every call is refused alike.
        dated = request_out_of_date(err)
        if dated or unusable_credentials(err) or credentials.aws_client_parameters.endpoint_url is not None:
            raise CredentialsRefused(
                f"could not {'check' if dated else 'use'} {credentials_named(credentials)} (STS GetCallerIdentity{why}): "
                f"{aws_message(err)}; {nothing}; {_remedy(err, 'sts:GetCallerIdentity', why)}") from err
        _warn(f"the AWS credentials{in_block(credentials)} were not checked before the run's first call: STS GetCallerIdentity{why} "
              f"failed ({aws_message(err)}); going on, as the services the run calls may still answer")


def load_targets(targets_block: str | None) -> Targets:
    """The saved RollwayTargets block, or Webordinary's defaults when no name is given.

    Raises:
        AccountNotLoaded: no block of that name (Prefect raises a bare ValueError), or a saved
            block that no longer validates (a RuntimeError from Prefect: one saved before the
            names it holds were checked).
        ApiError: the Prefect API refused the read (a 401, 403, 5xx) or did not answer it.
    """
    with request_left_out():
        return _targets_of(targets_block)


def _targets_of(targets_block: str | None) -> Targets:
    """``load_targets``, raising the Prefect API's httpx errors as they are: ``acts_on``'s caller
    (``flows.finalize.runs_within``) says them, as its other requests', naming the API's address."""
    without_traceback(AccountNotLoaded)
    if targets_block is None:
        return Targets()
    try:
        return RollwayTargets.load(targets_block).targets()
    except (ValueError, RuntimeError) as err:
        raise AccountNotLoaded(_not_loaded(err, targets_block, "rollway-targets", "targets_block")) from err


def load_credentials(aws_credentials_block: str | None, region: str) -> AwsCredentials:
    """The saved AwsCredentials block; without a name, boto3's default chain in ``region``.

    Raises:
        AccountNotLoaded: no block of that name, or a saved one that no longer validates.
        ApiError: the Prefect API refused the read or did not answer it.
    """
    without_traceback(AccountNotLoaded)
    if aws_credentials_block is None:
        return AwsCredentials(region_name=region)
    try:
        with request_left_out():
            return AwsCredentials.load(aws_credentials_block)
    except (ValueError, RuntimeError) as err:
        raise AccountNotLoaded(_not_loaded(err, aws_credentials_block, "aws-credentials",
                                           "aws_credentials_block")) from err


def _not_loaded(err: Exception, name: str, block_type: str, parameter: str) -> str:
    """A block that did not load, said as what to give the run: Prefect's "Unable to find block
    document named ..." named neither the blocks saved nor where the name comes from."""
    # A RuntimeError is a saved block that no longer validates: Prefect's message says so.
    unsaved = None if isinstance(err, RuntimeError) else unsaved_block(name, block_type,
                                                                       f"the run's {parameter} parameter")
    if unsaved is None:
        return str(err)
    return f"{unsaved}, or save one under that name (Blocks in the Prefect UI); nothing was changed"


@dataclass(frozen=True)
class RunSession:
    """What a run loads once and passes down: its targets, its credentials block, and the one
    session on them whose clients act in the targets' region.

    Each session made without a role asks STS who its keys are (``session_clients``): a run that
    built its session again (a resume reading metrics at its recorded period) asked twice before
    its first step, and read the credentials block twice.
    """

    targets: Targets
    credentials: AwsCredentials
    get_client: Callable[[str], Any]

    def environment(self, clock: ClockSettings, *, interval_seconds: int = 60) -> Environment:
        """Every port on this session's clients, reading CloudWatch every ``interval_seconds``."""
        from flows.flags import flag_table_missing  # flows.flags loads its clients from this module

        return aws_environment(self.get_client, self.targets, clock.build(), interval_seconds=interval_seconds,
                               flags_refused=flag_table_missing(self.targets))


def load_session(targets_block: str | None, aws_credentials_block: str | None) -> RunSession:
    """The saved targets and credentials, each block read once, and the run's session on them.

    Raises:
        AccountNotLoaded: a block is missing, the credentials name another region, or the
            targets name ARNs of another account than the credentials' (``account_refusal``).
        CredentialsRefused: the credentials' role could not be assumed, or their profile is not
            on the worker (``session_clients``).
    """
    targets = load_targets(targets_block)
    credentials = load_credentials(aws_credentials_block, targets.region)
    get_client = session_clients(credentials, targets.region)
    # Every flow's names are looked up in the credentials' account: a rollback (a finalize, a
    # clean-up) of a cluster the targets place in another account acted on a same-named one here.
    other_account = account_refusal(targets, getattr(get_client, "account", None))
    if other_account is not None:
        raise AccountNotLoaded(other_account)
    return RunSession(targets, credentials, get_client)


def load_clients(targets_block: str | None, aws_credentials_block: str | None) -> tuple[Targets, SessionClients]:
    """The saved targets and a client factory on the saved credentials (``load_session``)."""
    run = load_session(targets_block, aws_credentials_block)
    return run.targets, run.get_client


def load_environment(
    targets_block: str | None,
    aws_credentials_block: str | None,
    clock: ClockSettings,
    *,
    interval_seconds: int = 60,
) -> Environment:
    return load_session(targets_block, aws_credentials_block).environment(clock, interval_seconds=interval_seconds)


def run_owner() -> str:
    """Who holds a rollout's lease: this flow run, or (outside one) this process."""
    ctx = FlowRunContext.get()
    return f"{OWNER_PREFIX}{ctx.flow_run.id}" if ctx and ctx.flow_run else f"process/{uuid.uuid4()}"


def run_label() -> str | None:
    """This flow run as a report names it, ``<name> (<id>)`` (the name is what the Prefect UI
    lists; the id finds it), or None outside a flow run."""
    ctx = FlowRunContext.get()
    return f"{ctx.flow_run.name} ({ctx.flow_run.id})" if ctx and ctx.flow_run else None


SCHEDULE_ACTOR = "schedule"


def tick_actor(actor: str, run: Any = None) -> str:
    """Who a weekly tick records as its actor: "schedule" only for a run its deployment's
    schedule created. A person's quick run from the UI leaves the form's default, and was
    recorded as the schedule's: it is recorded as a run started by hand, with the run's name.

    ``run``: the flow run (default: this one); a name the person typed is kept as given.
    """
    if run is None:
        ctx = FlowRunContext.get()
        run = ctx.flow_run if ctx else None
    if actor != SCHEDULE_ACTOR or run is None or run.auto_scheduled:
        return actor
    return f"started by hand (flow run {run.name})"


def owner_run_id(owner: str | None) -> uuid.UUID | None:
    """The flow run a lease owner names, or None when the owner is not a flow run."""
    if not owner or not owner.startswith(OWNER_PREFIX):
        return None
    try:
        return uuid.UUID(owner[len(OWNER_PREFIX):])
    except ValueError:
        return None


def owner_finished(owner: str | None) -> bool:
    """Whether the flow run that owned a rollout has ended, asked of the Prefect API.

    A run paused for an approval does not renew its lease, so an expired lease alone does not
    mean its run died. An owner that is not a flow run cannot be asked: its lease decides. Nor can
    a flow run this Prefect API does not have (deleted in the UI or by a retention policy, or run
    against another API, such as an ephemeral one): its lease decides too, and the log says so.
    """
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    run_id = owner_run_id(owner)
    if run_id is None:
        return True
    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:
            # Raised, it failed the weekly tick with a bare "ObjectNotFound: None", and the run's
            # hook rolled back the rollout the tick should have resumed or left alone.
            _warn(passwords_hidden(f"the rollout's holder {owner} is not a flow run on the Prefect API at "
                                   f"{client.api_url} (deleted, or run against another Prefect API): its lease "
                                   "decides whether it is still at work"))
            return True
        except Exception as err:
            # Asked before the run writes anything: a refusal, which the hooks leave alone. Raised as
            # the API's own error (an outage past the client's retries), the run's hook rolled back
            # the rollout the holder may still be driving.
            raise RolloutInProgress(passwords_hidden(
                f"could not ask the Prefect API at {client.api_url} whether the rollout's holder {owner} has "
                f"ended ({error_said(err)}): it may still be driving the rollout. Nothing was changed; "
                "run again once the API answers")) from err
        if run.state is not None and run.state.is_paused() and _died_paused(client, run):
            return True
        if run.state is not None and (run.state.is_running() or run.state.is_cancelling()) \
                and _left_its_pause_dead(client, run):
            return True
    return run.state is not None and run.state.is_final()


def _left_its_pause_dead(client: Any, run: Any) -> bool:
    """Whether the Running or Cancelling ``run`` left its last pause after its process had died,
    and nothing has run it since: it is then marked Crashed, saying so.

    A paused run whose process died, resumed from the Prefect UI (Running, with nothing to run
    it) or cancelled there (Cancelling: only the run's own process finishes a cancellation), kept
    that state for ever, and every run of its rollout was refused, told to cancel it, which
    cannot work. Neither can the UI's "Change state", offered only for a run that has ended. It
    is told by what the run said while it waited: silent too long by the time it left the pause
    (``rollway.approvals.answered_dead``), as an answer nothing read is. A live run leaving its
    pause (answered, or cancelled and rolling back in its hooks, however slowly) was still saying
    it waited then; a run that went on past its pause into other states is left to them.
    """
    from prefect.client.schemas.objects import StateType

    from flows.approvals import waiting_stamps
    from rollway.approvals import answered_dead

    states = sorted(client.read_flow_run_states(run.id), key=lambda state: state.timestamp)
    paused = [i for i, state in enumerate(states) if state.type is StateType.PAUSED]
    if not paused or paused[-1] + 1 >= len(states):
        return False
    key = states[paused[-1]].state_details.pause_key
    after = states[paused[-1] + 1:]
    if not key or any(state.type not in (StateType.RUNNING, StateType.CANCELLING) for state in after):
        return False
    left = after[0]
    silent = answered_dead(waiting_stamps(client, run.id, key), left.timestamp.timestamp())
    if silent is None:
        return False
    how = "cancelled" if left.type is StateType.CANCELLING else "resumed"
    _mark_died_waiting(client, run, f"it last said it was waiting at {wall_utc(silent)}, "
                                    f"{left.timestamp.timestamp() - silent:.0f} s before it was {how}, and nothing "
                                    "ran it since")
    return True


def _died_paused(client: Any, run: Any) -> bool:
    """Whether the paused ``run`` has not said for minutes, and still not a period later, that it
    waits for its answer: its process died. It is then marked Crashed, saying so.

    Prefect keeps such a run Paused until its pause times out (up to 30 days), and every run of
    its rollout (the weekly schedule's, one started by hand) was refused or left it alone meanwhile.
    Looked at again a period or its client's longest backoff later (``look_again_after``): a live
    run cannot say it waits while the API is away, nor until its client's retries see it back.
    """
    from flows.approvals import look_again_after, silent_since

    first = silent_since(client, run, time.time())
    if first is None:
        return False
    time.sleep(look_again_after(first[1]))
    silent = silent_since(client, run, time.time())
    if silent is None:
        return False
    _mark_died_waiting(client, run, f"it last said it was waiting {time.time() - silent[0]:.0f} s ago")
    return True


def _mark_died_waiting(client: Any, run: Any, when: str) -> None:
    """Mark ``run``, which stopped saying it waits for an answer (``when``: what it last said),
    Crashed, saying so there and in this run's log: what is known (``stopped_waiting``), not more."""
    from prefect.states import Crashed

    from rollway.approvals import stopped_waiting

    said = stopped_waiting(when)
    state = "paused" if run.state.is_paused() else run.state.name
    _warn(f"the rollout's holder, flow run {run.name} ({run.id}), is {state}, but {said}; it is marked Crashed (a live "
          "run stops once it reads that, acting on no answer), and the rollout is taken over")
    client.set_flow_run_state(run.id, Crashed(message=said), force=True)


def _warn(message: str) -> None:
    """``message`` in the run's log (the UI shows it), or this module's logger outside a run."""
    run_logger(__name__).warning(message)


def run_logger(outside: str) -> Any:
    """The run's logger (its lines show in the UI), or the logger named ``outside`` (the caller's
    module) when no flow or task run is under way."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_logger, get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return get_logger(outside)


FINALIZING_TAG = "rollway:finalizing"
"""Tags the attempt of a `canary` flow run that began finalizing a promotion that passed its
window (``rollway:finalizing:run-count-N``): its hooks must then leave the promotion alone."""

# This process's own canary attempts: run id -> whether its current attempt began finalizing.
# Prefect runs a run's hooks in its own process when it can, and they then need no API. (One
# entry per run the process ran: a few bytes each, even for a long-lived worker.)
_finalizing_here: dict[uuid.UUID, bool] = {}


def attempt_tag(run_count: int) -> str:
    """The tag of a run that began finalizing while Prefect counted ``run_count`` for it.

    Per attempt: a retry or a re-run of the same flow run raises the count (so does the first
    resume from a pause, which is why the tag names the count, not an attempt number), starts
    over, and must be rolled back like any other run.
    """
    return f"{FINALIZING_TAG}:run-count-{run_count}"


def attempt_starts() -> None:
    """Record that this flow run's attempt has not begun finalizing (nothing outside a flow run)."""
    ctx = FlowRunContext.get()
    if ctx is not None and ctx.flow_run is not None:
        _finalizing_here[ctx.flow_run.id] = False


def mark_finalizing() -> None:
    """Tag this flow run's current attempt as finalizing on the Prefect API, and remember it here.

    Raises whatever the API raises: a caller relying on the tag must not go on without it.
    """
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    _add_tag(ctx.flow_run.id, lambda run: attempt_tag(run.run_count))
    _finalizing_here[ctx.flow_run.id] = True


def _add_tag(run_id: uuid.UUID, tag_for: Callable[[Any], str]) -> None:
    """Add ``tag_for(run)`` (the run as the Prefect API has it now) to the flow run's tags, unless
    it has it already.

    Raises whatever the API raises.
    """
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        tag, tags = tag_for(run), list(run.tags or [])
        if tag not in tags:
            client.update_flow_run(run.id, tags=[*tags, tag])


def began_finalizing(flow_run: Any) -> bool:
    """Whether the flow run's latest attempt began finalizing: known here if this process ran it,
    else asked of the Prefect API (a hook run elsewhere, after a crash).

    Raises whatever the API raises.
    """
    if flow_run.id in _finalizing_here:
        return _finalizing_here[flow_run.id]
    return latest_attempt_marked(flow_run.id)


def latest_attempt_marked(run_id: uuid.UUID) -> bool:
    """Whether the Prefect API shows the run's latest attempt tagged as finalizing."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    return attempt_tag(run.run_count) in (run.tags or [])


# This process's own rollout flow runs: run id -> the rollout the run holds (the newest, should
# it hold two in turn). Its hooks, run in the same process, need no API then.
_rollout_here: dict[uuid.UUID, str] = {}


def mark_rollout(rollout_id: str) -> None:
    """Tag this flow run with the rollout it holds, on the Prefect API, and remember it here.

    Its state hooks read it back (``run_rollout``) to roll back that rollout and no other. Nothing
    outside a flow run.

    Raises whatever the API raises, before anything is remembered: a caller relying on the tag
    must not go on without it (a hook run elsewhere after a crash could not tell the run's
    rollout, and would roll back whatever rollout is the newest then, perhaps someone else's).
    """
    from rollway.rollout_tags import rollout_tag

    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    if _rollout_here.get(ctx.flow_run.id) == rollout_id:
        return  # tagged already (a phase started by ``advance`` then runs as a resume)
    _add_tag(ctx.flow_run.id, lambda run: rollout_tag(rollout_id))
    _rollout_here[ctx.flow_run.id] = rollout_id


def run_rollout(flow_run: Any) -> str | None:
    """The rollout the flow run held (None: it held none): known here if this process ran it,
    else read from its tags on the Prefect API (a hook run elsewhere, after a crash).

    Raises whatever the API raises.
    """
    from prefect.client.orchestration import get_client

    from rollway.rollout_tags import tagged_rollout

    if flow_run.id in _rollout_here:
        return _rollout_here[flow_run.id]
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
    return tagged_rollout(run.tags)


CANARY_FLOW = "canary"
"""The name of the `canary` flow, whose runs keep no ledger: only the Prefect API knows them."""


def unfinished_runs(flow_name: str, targets: Targets, *, starting_within_seconds: float) -> list[str]:
    """Runs of the flow named ``flow_name`` acting on ``targets``' service that have not reached
    a final state (scheduled, pending, running, paused, cancelling), asked of the Prefect API,
    for a person to read.

    A flow that keeps no ledger leaves nothing else to tell whether one of its runs is still
    acting on the service (watching a window it may roll back, or about to deploy). Runs of
    other services are not counted; a run whose targets block cannot be loaded is: it may act
    on this one. A scheduled run is counted only if it is due within ``starting_within_seconds``
    (wall clock): a schedule creates its next runs ahead, and those would refuse forever,
    while a run starting later meets the caller's work finished (and its own preflight).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType

    final = {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
    with get_client(sync_client=True) as client:
        runs = runs_in_states(client, [flow_name], [t for t in StateType if t not in final])
    ours = acts_on(targets)
    horizon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=starting_within_seconds)
    return [f"{run.name} ({run.id}, {run.state.name if run.state else 'no state'})" for run in runs
            if ours(run) and not _scheduled_after(run, horizon)]


def _scheduled_after(run: Any, horizon: dt.datetime) -> bool:
    """Whether ``run`` is only scheduled, to start after ``horizon``: by its current state's time,
    since a run moved to start sooner keeps its first expected start time. A retry waiting for
    its delay, a late run, one waiting for a concurrency slot or resuming has started its work,
    or is about to: those are not "only scheduled"."""
    state = run.state
    if state is None or not state.is_scheduled() or state.name != "Scheduled":
        return False
    start = state.state_details.scheduled_time
    return start is not None and start > horizon


def acts_on(targets: Targets) -> Callable[[Any], bool]:
    """Whether a flow run's targets (its ``targets_block`` parameter, loaded once per name) name
    the same canary service or canary target group as ``targets``, in the same region; True
    when its block cannot be loaded, since it may."""
    seen: dict[str | None, bool] = {}

    def same(run: Any) -> bool:
        name = (run.parameters or {}).get("targets_block")
        if name is not None and not isinstance(name, str):
            return True  # not a block name: the run will fail, but nothing here can tell where
        if name not in seen:
            try:
                theirs = _targets_of(name)
            except AccountNotLoaded:
                seen[name] = True
            else:
                seen[name] = theirs.region == targets.region and (
                    (theirs.cluster, theirs.canary_service) == (targets.cluster, targets.canary_service)
                    or theirs.canary_target_group == targets.canary_target_group)
        return seen[name]

    return same


def runs_in_states(client: Any, flow_names: Sequence[str], states: Sequence[Any]) -> list[Any]:
    """Runs of the named flows whose state type is one of ``states``, asked of the Prefect API,
    every page of them: the API answers one page at a time (its size is the server's setting,
    200 by default), and a caller filtering the runs (by service, by targets block) would miss
    the ones past the first.

    Each page is the top of the list minus the runs already read, not an offset into it: runs
    that end between two reads move the rest of the list up, and however many end, no run can
    move past an offset it never had. The last read is the one that brings nothing new. The
    filter grows by one id per run read, which the few rollout runs alive at once keep small.
    """
    from prefect.client.schemas import filters
    from prefect.client.schemas.sorting import FlowRunSort

    seen: dict[Any, Any] = {}
    while True:
        page = client.read_flow_runs(
            flow_filter=filters.FlowFilter(name=filters.FlowFilterName(any_=list(flow_names))),
            flow_run_filter=filters.FlowRunFilter(
                id=filters.FlowRunFilterId(not_any_=list(seen)) if seen else None,
                state=filters.FlowRunFilterState(type=filters.FlowRunFilterStateType(any_=list(states)))),
            sort=FlowRunSort.ID_DESC,
        )
        new = [run for run in page if run.id not in seen]
        if not new:
            return list(seen.values())
        seen.update((run.id, run) for run in new)
