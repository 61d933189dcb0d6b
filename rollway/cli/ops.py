"""``rollway status``, ``promote`` and ``abort``: a rollout's operator commands, after kubectl-argo-rollouts.

They read the ledger (DynamoDB) and the load balancer through the same blocks the flows use,
and reach the rollout's flow run through the Prefect API in PREFECT_API_URL:

- ``status`` shows the newest rollout of the service, its transitions, the live ALB weights
  and the run waiting for an answer, if any;
- ``promote`` answers the paused run "approve", exactly as the Resume form in the UI would;
- ``hold`` answers it "hold" (stay at these weights, ask again later);
- ``abort`` answers it "reject" (the run rolls back and records it); with no paused run, it
  stops the run that owns the rollout, runs the ``rollback`` flow itself and records that.
"""

from __future__ import annotations

import functools
import getpass
import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Sequence, TypeVar
from uuid import UUID

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from rollway.bounds import as_given, seconds_said
from rollway.cli.blocks import deployment_path
from rollway.clock import ClockSettings
from rollway.deadline import READ_SECONDS
from rollway.decommission_page import page_said
from rollway.flags import name_rule
from rollway.ledger import (
    NOT_APPLIED, RolloutClosed, RolloutRecord, Transition, notice_sent, owed_rejection, rejection_owed, rejection_reason,
    claim_has_lapsed, claim_lapsed, lease_has_lapsed, refused_after, rollback_start, utc, wall_utc,
)
from rollway.phases import RolloutPhase
from rollway.model import ServiceState, Weights
from rollway.one_line import on_one_line, shown
from rollway.targets import Targets
from rollway.url_passwords import passwords_hidden
from rollway.window_page import window_page_refused
from rollway.window_said import acceptance_said, breach_said

ROLLOUT_FLOWS = ("progressive_rollout", "advance_phase", "canary")
"""Flows whose paused runs promote and abort answer."""

T = TypeVar("T")

HOW_TO_START = (
    f"start one from the `progressive_rollout` deployment: in the Prefect UI, Deployments -> "
    f"{deployment_path('progressive_rollout')} -> Run -> Custom run (its form holds the spec), or `prefect deployment "
    f"run {deployment_path('progressive_rollout')}` under `rollway up`, whose form is pre-filled (with "
    "`--param spec=...` where the form holds none, as on an account deployed from prefect.yaml)"
)
"""What ``status`` says when the ledger has no rollout of the service."""


RESUME_PATIENCE_SECONDS = 30.0
# The server refuses a resume with this reason while a freshly paused run has not yet stored
# its input form; the run stores it right after pausing, so the resume is simply retried.
_SCHEMA_NOT_STORED = "Run input schema not found"

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


class OpsError(RuntimeError):
    """An operator command cannot do what was asked; the message says why and what to do."""


class UsageError(OpsError):
    """An option's value is refused before anything is read (exit code 2, as other usage errors)."""


def _moved_on(record, superseded: Exception) -> OpsError:
    """The abort of ``record`` found another rollout the newest: nothing of it was rolled back."""
    return OpsError(f"rollout {record.rollout_id} of {record.image} is no longer the newest ({superseded}); "
                    "nothing was rolled back by this command: see `rollway status`")


class NoRollout(OpsError):
    """The service has no rollout to act on."""


class NoPausedRun(OpsError):
    """No run of the service's rollout is waiting for an answer."""


class TargetsUnknown(NoPausedRun):
    """No rollout is recorded, none is paused, and the targets block names what AWS does not know:
    a command has nothing to act on, and `rollway abort` no rollback to carry out instead."""


class RollingBack(OpsError):
    """The paused run said nothing for a while, but the ledger shows it rolling its rollout back."""


class Unattended(OpsError):
    """A run is Paused, but has stopped saying it waits for its answer: its process died, or every
    write of it is refused. Resumed, a dead one would show Running with nothing to run it, for ever."""


class AmbiguousRun(OpsError):
    """Several paused runs could be the service's; the operator has to name one. ``runs`` holds
    them, for status, which shows them all."""

    runs: tuple[Any, ...] = ()


class ResumeRefused(OpsError):
    """The Prefect API refused to resume the run."""


@dataclass(frozen=True)
class Service:
    """The service under rollout and the ports the commands read: from the flows' own blocks."""

    targets: Targets
    targets_block: str | None
    credentials_block: str | None
    ledger: Any
    router: Any
    deployer: Any = None  # an EcsDeployer; None: status does not ask ECS what a rollback can restore
    # The ledger for reads under a bound of their own (``ledger_read``): on clients whose calls end
    # within it. None: ``ledger`` is read, given up on at the bound all the same.
    ledger_reading: Callable[[float], Any] | None = None

    @property
    def name(self) -> str:
        return self.targets.canary_service


# The targets the running command loaded, for `reporting`'s answer to an AWS error that names no
# table (DynamoDB's "Requested resource not found"): set by load_account, read by reporting.
_loaded_targets: ContextVar[Targets | None] = ContextVar("rollway_loaded_targets", default=None)


def load_account(targets_block: str | None, credentials_block: str | None) -> tuple[Targets, Any]:
    """The saved targets and a client factory on the saved credentials (from the Prefect API).

    Raises:
        OpsError: a block does not exist on the API, or does not validate.
    """
    from flows import env
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        # Prefect would start a temporary server on PREFECT_HOME's database to read the blocks:
        # minutes without a word on a loaded machine, and beside the server of any `rollway up`
        # on that home. The blocks live on the server `rollway up` (or your account) runs.
        raise OpsError(
            "PREFECT_API_URL is not set: the commands read their blocks from a Prefect server; export "
            "PREFECT_API_URL=<the API address `rollway up` printed> (http://127.0.0.1:4200/api by default), "
            "or set it in your Prefect profile"
        )
    from contextlib import ExitStack

    from prefect.context import SyncClientContext
    from prefect.settings import PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED, temporary_settings

    from flows.approvals import bounded_client

    # A named block's load (which takes no client) and the reads saying why one did not load use the
    # context's client: Prefect's own slept a day's Retry-After in one read (``bounded_client``).
    # Entered without the context's check of the server's version, which the load's own client
    # never made (its failure is the load's to say), and only for a named block (none is read else).
    with ExitStack() as reads:
        def bounded() -> None:
            if not entered:
                with temporary_settings(updates={PREFECT_CLIENT_SERVER_VERSION_CHECK_ENABLED: False}):
                    reads.enter_context(SyncClientContext.model_construct(client=bounded_client()))
                entered.append(True)

        entered: list[bool] = []
        # RuntimeError: Prefect's Block.load for a saved block that no longer validates (saved
        # before a rule on its names existed), which used to print a traceback.
        try:
            if targets_block is not None:
                bounded()
            targets = env.load_targets(targets_block)
        except (ValueError, RuntimeError) as err:
            raise OpsError(_block_not_loaded(err, "--targets-block", targets_block, "rollway-targets")) from err
        try:
            if credentials_block is not None:
                bounded()
            credentials = env.load_credentials(credentials_block, targets.region)
        except (ValueError, RuntimeError) as err:
            raise OpsError(_block_not_loaded(err, "--credentials-block", credentials_block,
                                             "aws-credentials")) from err
    try:
        get_client = env.session_clients(credentials, targets.region)
    except env.AccountNotLoaded as err:
        # The blocks loaded: what to change is in them (a role STS refuses, a region they disagree
        # on, one AWS lacks), not in the block names or the API, which the advice above sent people to.
        raise OpsError(str(err)) from err
    _loaded_targets.set(targets)
    return targets, _refusing_bad_regions(get_client, targets.region)


def _block_not_loaded(err: Exception, option: str, name: str | None, block_type: str) -> str:
    """Why the block ``name`` given as ``option`` did not load, and what to pass instead."""
    from blocks.saved import unsaved_block
    from prefect.settings import PREFECT_API_URL

    unsaved = unsaved_block(name, block_type, option, meant=f"{option} {{}}")
    if unsaved is None:
        # Saved but unloadable (it no longer validates), or the names could not be read.
        api = PREFECT_API_URL.value() or "ephemeral"
        return passwords_hidden(f"{err} (Prefect API {api}); pass --targets-block and --credentials-block, or set "
                                "PREFECT_API_URL to the server `rollway up` printed")
    if (elsewhere := not_a_prefect_api()) is not None:
        return elsewhere
    return f"{unsaved}, or set PREFECT_API_URL to the server that holds yours (`rollway up` prints it)"


def not_a_prefect_api() -> str | None:
    """Why PREFECT_API_URL is not a Prefect API, or None when its health check answers.

    Another web server there (a service on the port, a proxy path that is not the API's) answers
    every read with 404, as the API answers for a block type nobody registered: the commands said
    "no block named ... (saved there: none)", and on-call went looking for a block. Asked only
    once a block did not load."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    with get_client(sync_client=True) as client:
        unhealthy = client.api_healthcheck()
    if unhealthy is None:
        return None
    said = " ".join(str(unhealthy).split(" - For more information")[0].split())
    # Said on the terminal: a server behind basic auth is reached as https://<user>:<password>@host/api.
    return passwords_hidden(f"PREFECT_API_URL {PREFECT_API_URL.value()} does not answer as a Prefect API ({said}): "
                            "set PREFECT_API_URL to the API address `rollway up` printed (it ends in /api), or your "
                            "account's Prefect API")


def _refusing_bad_regions(get_client: Any, region: str) -> Any:
    """``get_client``, with botocore's refusal of the blocks' region as an OpsError.

    botocore checks the region only when it builds a client (ValueError "Invalid endpoint" for
    "", InvalidRegionError for a malformed name): `rollway status` printed a traceback for it.
    No call has been made yet.
    """
    from botocore.exceptions import BotoCoreError

    def client(service: str) -> Any:
        try:
            return get_client(service)
        except (ValueError, BotoCoreError) as err:
            raise OpsError(f"cannot build the {service} client for region {region!r}: {err}; fix the region in the "
                           "targets or credentials block") from err

    if hasattr(get_client, "reading"):  # clients for reads under a bound (SessionClients.reading), refused alike
        client.reading = lambda seconds: _refusing_bad_regions(get_client.reading(seconds), region)  # type: ignore[attr-defined]
    return client


def connect(targets_block: str | None, credentials_block: str | None) -> Service:
    """Load the blocks and build the ledger and router on them."""
    from rollway.aws.ecs import EcsDeployer
    from rollway.aws.elbv2 import AlbRouter
    from rollway.aws.ledger import DynamoLedger

    targets, get_client = load_account(targets_block, credentials_block)
    # The router's and the ledger's reads (``live_weights``, ``ledger_read``) on clients whose calls
    # end within their bound: on the account's clients (six attempts of 10 s, kept for a rollback's
    # writes) a read given up on went on in its thread for a minute.
    reads = getattr(get_client, "reading", None)
    return Service(
        targets=targets, targets_block=targets_block, credentials_block=credentials_block,
        ledger=DynamoLedger(get_client("dynamodb"), targets),
        ledger_reading=(lambda seconds: DynamoLedger(reads(seconds)("dynamodb"), targets)) if reads is not None else None,
        router=AlbRouter(get_client("elbv2"), targets,
                         reads=(lambda seconds: reads(seconds)("elbv2")) if reads is not None else None),
        deployer=EcsDeployer(get_client("ecs"), targets),
    )


LOAD_BALANCER_READ_SECONDS = READ_SECONDS
"""How long a command waits for the load balancer's weights (its lookups first): a person waits on it."""


def live_weights(service: Service) -> Weights:
    """The weights the load balancer holds now, read (the load balancer, its listener, target groups
    and rule looked up first, when not yet) within ``LOAD_BALANCER_READ_SECONDS``, saying every 10 s
    what the command waits for. On the account's clients (six attempts of 10 s, kept for the
    writes) a load balancer that stopped answering held `rollway status` about a minute, silent.

    Raises:
        Unanswered: "Elastic Load Balancing (load balancer 'x') did not answer within N s".
        Whatever the read raised (TargetNotFound, an AWS error), as it raised it.
    """
    seconds = LOAD_BALANCER_READ_SECONDS
    reading = getattr(service.router, "reading", None)
    router = reading(seconds) if reading is not None else service.router
    return _waited_on(f"Elastic Load Balancing (load balancer {service.targets.load_balancer!r})", seconds,
                      router.get_weights)


UNREACHED_REMEDY = ("check this machine's network and proxy (HTTPS_PROXY), and the endpoint the AwsCredentials "
                    "block's aws_client_parameters.endpoint_url (or AWS_ENDPOINT_URL) names, if any")
"""What to check when no connection to AWS could be made from the command's machine."""


LEDGER_READ_SECONDS = READ_SECONDS
"""How long a command waits for a read of the ledger (DynamoDB GetItem, Query): a person waits on it."""


def ledger_read(service: Service, read: Callable[[Any], T], nothing_done: str | None = None) -> T:
    """``read(ledger)``, a read of the ledger made within ``LEDGER_READ_SECONDS``, saying every 10 s
    what the command waits for (as ``live_weights``). On the account's clients (several attempts of
    up to a minute, kept for the writes) a DynamoDB that stopped answering held `rollway status` for
    minutes, silent. The ledger's writes are not made here: they are not given up on.

    ``nothing_done``: said after the error when the read runs out ("nothing was rolled back").

    Raises:
        Unanswered: "DynamoDB (table 'x') did not answer within N s[; nothing_done]".
        OpsError: no connection to DynamoDB could be made, naming the table and what to check.
        Whatever else the read raised, as it raised it.
    """
    from rollway.aws.errors import never_reached
    from rollway.deadline import Unanswered

    seconds = LEDGER_READ_SECONDS
    ledger = service.ledger_reading(seconds) if service.ledger_reading is not None else service.ledger
    done = f"; {nothing_done}" if nothing_done is not None else ""
    try:
        return _waited_on(f"DynamoDB (table {service.targets.rollouts_table!r})", seconds, lambda: read(ledger))
    except Unanswered as err:
        if nothing_done is None:
            raise
        raise Unanswered(f"{err}{done}") from None
    except Exception as err:
        if not never_reached(err):
            raise
        # botocore's words name only an address: "AWS refused or could not be reached: Could not
        # connect to the endpoint URL" left a person to guess which service, which table, and what to fix.
        raise OpsError(f"DynamoDB (table {service.targets.rollouts_table!r}, region {service.targets.region}) could "
                       f"not be reached: {err}; {UNREACHED_REMEDY}{done}") from err


def _waited_on(what: str, seconds: float, read: Callable[[], T]) -> T:
    """``read()``, from ``what`` (a service and the resource read), given up on after ``seconds``;
    a "still waiting" line every 10 s on stderr while the person waits."""
    from rollway.deadline import answered

    return answered(what, seconds, read, lambda line: errors.print(line, markup=False))


def owner_run_id(record: RolloutRecord | None) -> UUID | None:
    """The flow run that owns (or last owned) the rollout, if a flow run did."""
    from flows.env import owner_run_id as run_id_of

    return run_id_of(record.owner) if record is not None else None


# --- the Prefect API --------------------------------------------------------------------


def _is_paused(run: Any) -> bool:
    return run.state is not None and run.state.is_paused()


def runs_on(client: Any, targets_block: str | None, flows: Sequence[str], states: Sequence[Any]) -> list[Any]:
    """Runs of ``flows`` in ``states`` whose targets_block parameter is ``targets_block``."""
    from flows.env import runs_in_states

    return [r for r in runs_in_states(client, flows, states)
            if (r.parameters or {}).get("targets_block") == targets_block]


def paused_runs(client: Any, targets_block: str | None) -> list[Any]:
    """Paused runs of the rollout flows whose targets_block parameter is ``targets_block``."""
    from prefect.client.schemas.objects import StateType

    return runs_on(client, targets_block, ROLLOUT_FLOWS, [StateType.PAUSED])


def read_run(client: Any, run_id: UUID) -> Any | None:
    """The flow run, or None when the Prefect API does not have it."""
    from prefect.exceptions import ObjectNotFound

    try:
        return client.read_flow_run(run_id)
    except ObjectNotFound:
        return None


def find_paused_run(client: Any, service: Service, record: RolloutRecord | None, flow_run: UUID | None = None,
                    nothing_done: str = "nothing was answered") -> Any:
    """The run of ``service``'s rollout that waits for an answer.

    Looks at ``flow_run`` when given, else at the run that owns the rollout in the ledger,
    else at every paused rollout run using the same targets block. ``nothing_done`` ends the
    refusal of a ``flow_run`` that waits for no answer: what the command did not do (`rollway
    abort`'s "nothing was answered" left on-call to wonder whether the traffic moved).

    Raises:
        NoPausedRun: none is paused (the message says where the rollout stands).
        AmbiguousRun: several are, and none owns the rollout.
    """
    if flow_run is not None:
        run = read_run(client, flow_run)
        # Each says what to do next: alone, the person had nothing to go on but to guess another id.
        if run is None:
            raise NoPausedRun(f"flow run {flow_run} is not on the Prefect API at {client.api_url}: check the "
                              "--flow-run id (`rollway status` names the service's paused run), or leave --flow-run "
                              f"out to answer that run; {nothing_done}")
        if not _is_paused(run):
            raise NoPausedRun(f"flow run {run.name!r} ({run.id}) is {_state_name(run)}{_left_pause(run)}, not paused, "
                              "so it waits for "
                              "no answer: `rollway status` shows where the rollout stands and the run that waits, if "
                              f"any; {nothing_done}")
        return run
    owner = owner_run_id(record)
    # The ledger may outlive the Prefect database (a new server, a cleaned home): a run it
    # names that the API no longer has is simply not the paused one.
    run = read_run(client, owner) if owner is not None else None
    if run is not None and _is_paused(run):
        return run
    candidates = paused_runs(client, service.targets_block)
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        where = (
            f"its newest rollout {record.rollout_id} is {record.phase.value} at {record.weights} (stable/canary)"
            if record is not None else "it has no rollout in the ledger"
        )
        raise NoPausedRun(f"no paused rollout run for {service.name}: {where}{last_answer(record)}. "
                          f"{nothing_paused_next(record, service.targets_block)}")
    listed = ", ".join(f"{r.name} ({r.id})" for r in candidates)
    several = AmbiguousRun(f"several paused runs could be {service.name}'s: {listed}; pass --flow-run ID")
    several.runs = tuple(candidates)
    raise several


def last_answer(record: RolloutRecord | None) -> str:
    """How the rollout's last pause was answered, from the ledger, for a person who finds nothing
    paused: told only where the rollout stands, the one who came to answer could not tell that
    someone else had (and how), or that the pause had timed out and rolled the rollout back."""
    from rollway.reports import ANSWERS

    # An answer the run read only once its look at the canary had rolled the rollout back
    # (``NOT_APPLIED``) is the last answer too: told of the rollback or of an earlier answer alone,
    # the person who gave it could not tell that it had arrived, nor why nothing came of it.
    answers = [t for t in (record.history if record is not None else ()) if t.kind in ANSWERS or t.kind == NOT_APPLIED]
    taken = ""
    if answers:
        last = answers[-1]
        at = f"{utc(last.at)} (rollout clock)"
        said, sep, why = (last.comment or "").rpartition("; not applied: ")
        if last.kind == "timeout":
            taken = f"; its last pause went unanswered and timed out at {at} ({last.comment})"
        elif last.kind == NOT_APPLIED:
            why = why if sep else "the run read it only after its look at the canary had rolled the rollout back"
            taken = (f"; its last pause was answered by {last.actor} at {at}: {said if sep else last.comment}; that "
                     f"answer was not applied: {why}")
        else:
            taken = f"; its last pause was answered by {last.actor} at {at}: {last.comment}"
    # An answer the run refused after the one it took: told only of the one taken, the person
    # whose answer was refused could not tell that it had been, nor why. The newest recorded (the
    # list is in recording order), and after the answer taken by recording order (``refused_after``):
    # its time is its writer's clock, `rollway promote`'s machine's, which may be behind or ahead of the run's.
    refused = record.refused_answers[-1] if record is not None and record.refused_answers else None
    if refused is None or (answers and not refused_after(record, refused, answers[-1])):
        return taken
    which = "a later answer" if answers else "the last answer"
    return (f"{taken}; {which}, by {refused.actor} at {utc(refused.at)} (rollout clock), was refused: "
            f"{refused.as_transition().comment}")


def rolled_back_next(record: RolloutRecord) -> str:
    """What to do after a rollback, for status and an answer that found nothing paused: where the
    evidence is and how to try again ("start a new rollout" alone named neither)."""
    return (f"`rollway report --rollout {record.rollout_id}` prints its incident report; once the cause is fixed, "
            f"a new rollout tries again: {HOW_TO_START}")


def nothing_paused_next(record: RolloutRecord | None, targets_block: str | None) -> str:
    """What a person who came to answer a pause, and found none, can do: by where the newest
    rollout stands (of the service ``targets_block`` names, whose weekly runs are read). Told only
    where it stands, they were left to work out whether to wait, resume, finish a rollback,
    finalize or start anew."""
    from rollway.finalize import breach_way_out, finalize_unfinished, is_finalized, unhandled_breach
    from rollway.reports import next_phase

    phase = record.phase if record is not None else None
    if phase is None:
        return ("Nothing waits for an answer: `rollway status` lists any `canary` flow run under way (it keeps no "
                f"ledger); or {HOW_TO_START}")
    if phase in (RolloutPhase.PENDING, RolloutPhase.PROGRESSING):
        return ("Nothing waits for an answer yet: its run asks at its next pause, when SNS says \"Rollout waits for a "
                "person\"; `rollway status` shows the run that owns the rollout, its lease, and the paused run once it "
                "asks")
    if phase is RolloutPhase.PAUSED:
        # Recorded only at the end of a weekly phase that passed: nothing asks until the next one.
        # Status's own "next phase" row, on the clock the rollout ran on: the due time alone left
        # the person to work out how far off it was, or that it was overdue and why nothing asked.
        nxt, clock = next_phase(record), between_phases_clock(record)
        upcoming = (next_phase_row(record, clock.build().now(), clock.speed,
                                   functools.partial(scheduled_advance, targets_block=targets_block))
                    if clock is not None else None)
        return (f"It holds between weekly phases, {nxt.passed} passed; next phase {upcoming}; nothing asks for an "
                "answer before that phase starts" if nxt is not None and upcoming is not None else
                "It holds between weekly phases, and nothing asks for an answer until the weekly `advance_phase` "
                "run starts the next one")
    if phase is RolloutPhase.ROLLING_BACK:
        return "A rollback of it began and is not recorded as finished: `rollway abort` finishes it"
    if phase is RolloutPhase.ROLLED_BACK:
        return f"It has ended, so there is nothing to answer: {rolled_back_next(record)}"
    if unhandled_breach(record) is not None:
        # Before a finalize begun and not finished, which refuses to carry on past a breach recorded
        # since; and before "finalized": one recorded after the finalize stands too (finalize refuses
        # naming it), and "the next rollout can start" alone read as a window that closed cleanly.
        return ("It has ended, promoted, so there is nothing to answer; its monitoring window saw a breach it could "
                f"not roll back (`rollway status` shows it): {breach_way_out(record)}")
    if is_finalized(record):
        return "It has ended, promoted and finalized, so there is nothing to answer: the next rollout can start"
    if finalize_unfinished(record):
        return ("It has ended, promoted, so there is nothing to answer; its finalize began and did not finish: run "
                "`rollway finalize` again, which carries on from where it stopped")
    return ("It has ended, promoted, so there is nothing to answer: once its monitoring window has passed, "
            "`rollway finalize` puts it on the stable service and readies the canary service for the next rollout")


def _state_name(run: Any) -> str:
    return run.state.name if run.state is not None else "without a state"


def _left_pause(run: Any) -> str:
    """Why a Running run left its pause, when it says (`` (...)``): rollway's approver sets it on a
    pause the run ended unanswered, the judge rolling the rollout back while it waited, or its
    timeout come."""
    said = " ".join(str(run.state.message or "").split()) if run.state is not None and run.state.is_running() else ""
    return f" ({said})" if said else ""


def resume(flow_run_id: UUID, run_input: dict[str, Any], *, paused: Any = None,
           patience_seconds: float = RESUME_PATIENCE_SECONDS) -> None:
    """Resume a paused run with ``run_input`` (validated by the server against the run's form).

    ``paused``: the run's Paused state as the caller found it, which says, when the run has left
    it by the time the answer arrives, whether another answer or the pause's timeout came first.

    Raises:
        ResumeRefused: the server refused (the input does not fit the form, the run had left its
            pause: answered, timed out, cancelled; or the form was not stored within
            ``patience_seconds``), or it failed to take the answer for ``patience_seconds`` while
            the run stayed at the pause.
    """
    from prefect.client.schemas.responses import SetStateStatus

    from flows.approvals import bounded_client

    deadline = time.monotonic() + patience_seconds
    with bounded_client() as client:
        run = client.read_flow_run(flow_run_id)
        while True:
            if _away_from(run.state, paused):
                # Paused again, at a pause after the one read (someone answered that one and the
                # run went on): the answer was given to a question its giver had not seen.
                raise _not_taken(client, run, paused)
            # The API, not prefect.flow_runs.resume_flow_run: that one returns quietly when the
            # server aborts the resume (the run left its pause after the read above: its
            # timeout fired, or it was cancelled), and this command then said "resumed".
            response = client.resume_flow_run(flow_run_id, run_input=run_input)
            if response.status == SetStateStatus.ACCEPT:
                return
            reason = response.details.reason if response.details is not None else response.status.value
            if response.status == SetStateStatus.ABORT or (response.state and response.state.is_failed()):
                # Not paused any more (ABORT), or the server found the pause expired (Failed).
                latest = client.read_flow_run(flow_run_id)
                if _stored_answer(client, latest, paused or run.state) == run_input:
                    # This very answer: the server took an earlier try of it, whose reply a restart or a
                    # dropped connection lost, and the client sent it again. Told "answered first by"
                    # themselves, "not taken", the person thought their answer lost.
                    return
                if _still_at(latest, paused or run.state):
                    # Aborted with the run still at this very pause: the server failed to take the
                    # answer (its state validation erred, a database busy under load), not the run
                    # left its pause. Told "not paused" of a run the UI showed paused, the person
                    # was left to guess; and an answer nobody sent again was lost.
                    if time.monotonic() < deadline:
                        time.sleep(0.2)
                        run = latest  # read just now, still at this pause: the next try's, not read again
                        continue
                    raise ResumeRefused(f"the Prefect API did not take this answer ({reason}); flow run {latest.name} "
                                        f"({latest.id}) is still paused at this pause, unanswered: answer again")
                raise _not_taken(client, latest, paused or run.state, reason)
            if _SCHEMA_NOT_STORED not in str(reason) or time.monotonic() >= deadline:
                raise ResumeRefused(f"the Prefect API refused to resume flow run {flow_run_id}: {reason}")
            # The run stores its form moments after pausing; ask again shortly.
            time.sleep(0.2)
            run = client.read_flow_run(flow_run_id)


def _still_at(run: Any, paused: Any) -> bool:
    """Whether ``run`` is still paused at the pause ``paused`` (the one being answered), its
    timeout not yet past."""
    state = run.state
    if _away_from(state, paused):
        return False
    due = state.state_details.pause_timeout
    return due is None or datetime.now(timezone.utc) < due


def _away_from(state: Any, paused: Any) -> bool:
    """Whether a run in ``state`` is away from the pause ``paused``: without a state, not paused,
    or paused again at a later pause (``_another_pause``)."""
    return state is None or not state.is_paused() or _another_pause(state, paused)


def _another_pause(state: Any, paused: Any) -> bool:
    """Whether the Paused ``state`` is a later pause of the run than ``paused``, the one the person
    answering was shown (each of rollway's pauses has a key of its own)."""
    if paused is None:
        return False
    key, read = state.state_details.pause_key, paused.state_details.pause_key
    return key is not None and read is not None and key != read


def rolls_back_itself(record: RolloutRecord | None, run: Any, wall: float) -> bool:
    """Whether the ledger shows ``run`` carrying out its rollout's rollback, its claim live at
    ``wall``: renewed by the run's process while it acts, the claim says that process lives."""
    return (record is not None and record.phase is RolloutPhase.ROLLING_BACK and record.rollback_expires > wall
            and str(run.id) in (record.rollback_holder or ""))


def check_attended(run: Any, *, look_again: bool = True, record: RolloutRecord | None = None) -> None:
    """Refuse to answer a paused run whose process died, before anything is sent.

    A run found silent is asked once more a period later (``look_again_after``): a live run cannot
    say it waits while the Prefect API is away, and says so again once its client's retries and its
    poll see the API back; a command run just as a long server restart ended must not take it for dead. ``look_again``: False where nothing
    is done on the verdict (``status`` only shows it, and must not stall).

    ``record``: the rollout as the command read it. A run whose watch rolled back while the API
    was away says nothing until its rollback is done; its claim on that rollback says it lives.

    Raises:
        Unattended: the run has not said for too long that it waits; the message says since when.
        RollingBack: silent, but rolling its rollout back (``rolls_back_itself``): nothing to answer.
    """
    from flows.approvals import bounded_client, look_again_after, silent_since

    claimed = rolls_back_itself(record, run, time.time())
    with bounded_client() as client:
        silent = silent_since(client, run, time.time())
        if silent is not None and look_again:
            again = look_again_after(silent[1])
            errors.print(f"flow run {run.name} has not said for {time.time() - silent[0]:.0f} s that it still "
                         f"waits for an answer: looking again in {again:.0f} s", markup=False)
            time.sleep(again)
            silent = silent_since(client, run, time.time())
            if silent is not None and not _is_paused(client.read_flow_run(run.id)):
                # It left its pause meanwhile: a process drives it (one whose watch rolled back while
                # the API was away says nothing until it leaves the pause, once the API is back).
                # Forced Crashed, a live run was failed, a finished one's end overwritten; the
                # answer is refused as for any run that is not paused.
                return
    if silent is not None and claimed:
        raise RollingBack(f"flow run {run.name} ({run.id}) rolls the rollout back: the ledger shows its claim on "
                          f"rollout {record.rollout_id}'s rollback ({record.rollback_holder}), which it renews while "
                          "it acts; it has not said it waits since the Prefect API was away, and leaves its pause "
                          "once the rollback is done. Your answer was not sent: `rollway status` shows the rollback")
    if silent is not None:
        since, every = silent
        raise Unattended(f"flow run {run.name} ({run.id}) is paused, but has stopped saying it waits for its answer: it "
                         f"last said it was waiting at {wall_utc(since)}, {time.time() - since:.0f} s ago (it says so every "
                         f"{seconds_said(every)}): its process died (a restart of its worker or of `rollway up`, a lost machine), "
                         # Told as the one cause, a live run whose notes a rate limit refused (a 429 answered
                         # to its requests alone) was said dead as a fact, and nobody looked further.
                         "or, if it lives, the Prefect API (or a proxy in front of it) has refused its every write "
                         "since (a rate limit answering its requests alone)")


def end_unattended(run: Any, who: str, action: str, comment: str) -> None:
    """Mark the paused ``run`` that stopped saying it waits Crashed, saying who answered what.

    Left Paused, the rollout it owns could not be taken over until the pause timed out (a run
    started by hand is refused while its owner's run has not ended), and ``status`` kept
    showing it as waiting. Forced: the server would not let a Paused run crash otherwise.
    """
    from prefect.states import Crashed

    from flows.approvals import bounded_client

    from rollway.approvals import stopped_waiting

    said = f" ({' '.join(comment.split())})" if comment.strip() else ""
    with bounded_client() as client:
        client.set_flow_run_state(run.id, Crashed(
            message=f"{stopped_waiting()}; {who} answered {action}{said}, which was not sent to it, and which this "
                    "run never acted on"), force=True)


def unattended_next(record: RolloutRecord | None, run: Any, action: str) -> str:
    """What the person whose ``action`` a dead paused run cannot take should do instead."""
    if record is not None and owner_run_id(record) == run.id and not record.phase.terminal:
        return (f"It is marked Crashed now, and rollout {record.rollout_id} stays at {record.weights} "
                "(stable/canary), resumable from the ledger: start `progressive_rollout` again (or let the "
                "weekly `advance_phase` run), which takes the rollout over once the dead run's lease has run out "
                f"and asks again at the same pause, where your answer ({action}) can be given; "
                "or `rollway abort` rolls it back")
    return (f"It is marked Crashed now; its canary keeps its traffic with nobody watching: start the "
            f"`{flow_name(run)}` flow again, or run the `rollback` flow to move the traffic back")


def _stored_answer(client: Any, run: Any, paused: Any) -> dict[str, Any] | None:
    """The answer the server stored with the resume of ``run``'s pause ``paused``; None when none was."""
    import json

    import httpx

    keyset = paused.state_details.run_input_keyset if paused is not None else None
    if not keyset:
        return None
    try:
        given = json.loads(client.read_flow_run_input(run.id, keyset["response"]))
    except httpx.HTTPStatusError as err:
        if err.response.status_code != 404:
            raise
        return None  # nobody's answer was taken
    return given if isinstance(given, dict) else None


def _not_taken(client: Any, run: Any, paused: Any, reason: str | None = None) -> ResumeRefused:
    """Why ``run`` no longer takes an answer to its pause ``paused``: another person answered it
    first (their answer, as the server stored it), or it timed out (and what the run does then),
    or else the state it is in.

    Told only "not paused", the second of two people answering at once, or one answering a pause
    that had just timed out, could not tell whether the rollout went on, rolls back or asks again.
    """
    name, now = f"flow run {run.name} ({run.id})", _state_name(run)
    if run.state is not None and run.state.is_paused() and _another_pause(run.state, paused):
        # "it is Paused now" read as the pause this answer was for, still open.
        asks = f": {run.state.message}" if run.state.message else ""
        now = f"paused at a later pause, which asks again{asks}"
    given = _stored_answer(client, run, paused)
    if given is not None:
        comment = f" ({given.get('comment')})" if given.get("comment") else ""
        return ResumeRefused(f"{name} was answered first by {given.get('approver')}: {given.get('action')}"
                             f"{comment}; it is {now} now, and this answer was not taken")
    due = paused.state_details.pause_timeout if paused is not None else None
    if due is not None and datetime.now(timezone.utc) >= due:
        asked = f" ({paused.message})" if paused.message else ""
        return ResumeRefused(f"{name}'s pause timed out at {due.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC, "
                             f"before this answer{asked}; it is {now} now, and this answer was not taken")
    why = f" ({reason})" if reason else ""
    return ResumeRefused(f"{name} cannot be resumed: it is {now}{_left_pause(run)}, not paused{why}")


def wait_for_run(flow_run_id: UUID, done: Callable[[Any], bool], *, timeout_seconds: float, poll_seconds: float = 0.5) -> Any:
    """Poll the API until ``done(run)``; returns the run.

    Raises:
        TimeoutError: naming the run's last state.
    """
    from flows.approvals import bounded_client

    deadline = time.monotonic() + timeout_seconds
    with bounded_client() as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if done(run):
                return run
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"flow run {run.name} ({flow_run_id}) is still {_state_name(run)} after {seconds_said(timeout_seconds)}"
                )
            # Another process drives the run; the API is the only way to see its progress. Never
            # past the deadline: --wait-seconds 0.1 waited a whole poll, and took what came after.
            time.sleep(min(poll_seconds, max(0.0, deadline - time.monotonic())))


def is_final(run: Any) -> bool:
    return run.state is not None and run.state.is_final()


# --- what the commands print ------------------------------------------------------------


def _weights(weights: Weights | None) -> str:
    return "" if weights is None else str(weights)


def _weekly_phase(record: RolloutRecord) -> str:
    """The rollout's weekly phase as its plan names it, "week 2 (2 of 3)": the run's log, summary and
    SNS say the name, and a number alone left a person counting the plan's phases. Its number alone
    when the recorded spec no longer validates (status must still show it, before an abort)."""
    from pydantic import ValidationError

    from rollway.spec import RolloutSpec

    number = record.weekly_phase_index + 1
    try:
        phases = RolloutSpec.from_record(record.spec_json).phases
    except ValidationError:
        return str(number)
    return f"{phases[number - 1].name} ({number} of {len(phases)})" if number <= len(phases) else str(number)


def _stage(record: RolloutRecord, paused: bool = False, lapsed: bool = False) -> str:
    from pydantic import ValidationError

    from rollway.spec import RolloutSpec

    try:
        weights = RolloutSpec.from_record(record.spec_json).weights
    except ValidationError:
        # A spec recorded under older rules: status is what a person reads before `rollway
        # abort`, which can still roll such a rollout back, so it must not fail here.
        return f"{record.stage_index + 1} (its recorded spec does not meet today's rules: it can be rolled back, not resumed)"
    if record.stage_index < 0:
        return f"not started (stages {', '.join(f'{w}%' for w in weights)})"
    # Only a rollout under way bakes: one rolled back (or rolling back) mid-stage did not pass it.
    # A run paused on a stage it has not passed (the judge could not decide, or the metrics
    # could not be read) bakes no longer: "baking" beside its "stage over" question misled.
    # Nor does one whose run stopped renewing its lease (``lease_lapsed``): nothing judges it.
    state = ("passed" if record.stage_passed
             else "not passed; its run is paused (below)" if paused and record.phase is RolloutPhase.PROGRESSING
             else "not passed; no run bakes it (its lease lapsed: owner below)" if lapsed
             else "baking" if record.phase is RolloutPhase.PROGRESSING else "not passed")
    if record.stage_index >= len(weights):
        # A record past its spec's stages (an older rollway's, or its spec edited between runs):
        # status is read before `rollway abort`, so it says what it knows rather than fail.
        return (f"{record.stage_index + 1} (past the {len(weights)} stages of its recorded spec: "
                f"{', '.join(f'{w}%' for w in weights)}), {state}")
    return f"{record.stage_index + 1}/{len(weights)} ({weights[record.stage_index]}%), {state}"


def held_row(record: RolloutRecord, paused: Any | None) -> str | None:
    """Who held the stage the rollout stands at, when a person's hold is the last answer to its
    pause (``held_by_person``): the paused run asks "a person held this stage", and status named
    nobody outside the history rows, which a short history does not reach. "not recorded" when the
    run's question says so and the ledger has no such hold; None when neither does."""
    from rollway.decide import PERSON_HELD, held_by_person
    from rollway.ledger import answer_said

    hold = None if record.phase.terminal else held_by_person(record)
    if hold is not None:
        said = answer_said("hold", hold.comment)
        return f"{hold.actor} at {utc(hold.at)} (rollout clock)" + (f": {said}" if said else "")
    if PERSON_HELD in str(getattr(getattr(paused, "state", None), "message", None) or ""):
        return f"not recorded: the run's question says {PERSON_HELD}, the ledger has no such hold"
    return None


def unlike_the_ledger(record: RolloutRecord, live: Weights) -> str:
    """What status says of a load balancer whose weights are not the ledger's, as a resumed run
    would take them (``flows.progressive.reconcile``): the rollout's own next shift, made and not
    recorded yet (its run stopped between the two writes, or is between them now), which the
    resume records and bakes; anything else is drift, which it refuses unless told to adopt it.
    Status called both drift, and on-call rolled back a healthy rollout a resume would have taken on."""
    from pydantic import ValidationError

    from rollway.decide import unrecorded_shift
    from rollway.spec import RolloutSpec

    drift = f"drift: the load balancer holds {live} but the ledger says {record.weights}"
    if record.phase.terminal:
        return drift
    try:
        spec = RolloutSpec.from_record(record.spec_json)
    except ValidationError:  # a resume refuses such a record; a rollback still reads it
        return f"{drift}; `rollway abort` rolls back"
    made = unrecorded_shift(spec, record, live)
    if made is None:
        return f"{drift}; a resumed run refuses it unless run with adopt_live_weights=true; `rollway abort` rolls back"
    return (f"the load balancer holds {live}, stage {made + 1}/{len(spec.stages)} ({spec.stages[made].weight}%), "
            "the rollout's own next shift, which the ledger has not recorded yet: its run moved the traffic and "
            "stopped before recording it, or records it now. If that run has ended, a resumed run "
            "(progressive_rollout with the same image, or the next advance_phase run) records it and bakes the "
            "stage; `rollway abort` rolls back")


_HISTORY_COLUMNS = ("at (rollout clock)", "kind", "actor", "weights", "what")


def _history_rows(history: Iterable[Transition], limit: int) -> tuple[str, list[tuple[str, ...]]]:
    """The history's title and its newest ``limit`` transitions, one tuple of cells each."""
    from rollway.finalize import entry_words

    transitions = list(history)[-limit:]
    rows = []
    for t in transitions:
        weights = f"{_weights(t.from_weights)} -> {_weights(t.to_weights)}" if t.from_weights else _weights(t.to_weights)
        # A breach not rolled back an older rollway recorded ends with a way out that may be stale
        # now: status says the current one in its finalize row.
        what = "; ".join(x for x in (entry_words(t), t.verdict) if x)
        # The ledger's words as text, never a control character acting on the terminal.
        rows.append((utc(t.at), t.kind, shown(t.actor, keep=''), weights, shown(what)))
    return f"last {len(transitions)} transition{'' if len(transitions) == 1 else 's'}", rows


def history_table(history: Iterable[Transition], limit: int) -> Table:
    title, rows = _history_rows(history, limit)
    table = Table(title=title, title_justify="left")
    for column in _HISTORY_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in rows:
        # The ledger's words (people's names and comments, AWS's messages) are text, not markup.
        table.add_row(*(Text(cell) for cell in row))
    return table


def history_lines(history: Iterable[Transition], limit: int) -> list[str]:
    """The history for output that is not a terminal (a runbook, a ticket): one line a transition,
    its columns aligned and the last one ("what") whole. The table, 80 columns wide there, folded
    each image digest over many lines."""
    title, rows = _history_rows(history, limit)
    # A line break in a person's comment would start a line that is no transition.
    rows = [_HISTORY_COLUMNS, *(tuple(" ".join(cell.split()) for cell in row) for row in rows)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HISTORY_COLUMNS) - 1)]
    return [title, *("  ".join((*(cell.ljust(width) for cell, width in zip(row, widths)), row[-1])).rstrip()
                     for row in rows)]


def lease_lapsed(record: RolloutRecord, wall: float | None, paused: Any | None) -> bool:
    """Whether the run holding a rollout under way (``progressing``) stopped renewing its lease by
    ``wall`` (the wall clock, as leases are stamped; None: not told, no lapse claimed) and no paused
    run explains it (a paused run renews no lease): no run drives the rollout, nothing judges it.
    Status's stage row asks it: only a stage under way is baked. The owner row says a lapse in
    every phase (``lapsed_lease_said``); a rollout holding between weekly phases is otherwise left
    to its "next phase" row."""
    return lease_has_lapsed(record, wall) and paused is None and record.phase is RolloutPhase.PROGRESSING


def _owner_row(record: RolloutRecord, wall: float | None = None, paused: Any | None = None) -> str:
    """``paused``: the run (or runs) waiting for an answer, as status shows them below."""
    from rollway.reports import lapsed_lease_said

    if not record.owner:
        return "none"
    if record.phase is RolloutPhase.ROLLED_BACK:
        # The ledger keeps the last holder (a rollback writes without a lease): shown as the
        # owner with a lease, a dead run read as one still driving a rollout that has ended.
        return f"none: the rollout has ended (last held by {record.owner})"
    if lease_has_lapsed(record, wall):
        # Its time alone, long past, read as a run still holding the rollout, in every phase a
        # lease is held in (the report's holder line of a promotion says the same words).
        return lapsed_lease_said(record, waiting=paused is not None)
    # Leases are on the wall clock (the history beside it on the rollout clock).
    return f"{record.owner}, lease until {wall_utc(record.lease_expires)}"


def next_phase_row(record: RolloutRecord, now: float, speed: float = 1.0,
                   scheduled: Callable[[float], float | None] | None = None) -> str | None:
    """When the next weekly phase of a rollout holding between phases is due, and how far off
    that is at ``now`` (the rollout clock, on which ``speed`` runs), or plainly that it is overdue;
    None for a rollout not between phases. Status said only "weekly phase 1, passed": when the
    schedule would go on, or that it had not though the phase was due, only the report and promote told.

    ``scheduled``: when the weekly schedule's advance_phase run that starts a phase due at a given
    time begins (``scheduled_advance``; None: not asked), said at real time only (the cron fires on
    the wall calendar, a sped-up rollout clock's times are not its)."""
    from rollway import weekly
    from rollway.clock import on_the_wall
    from rollway.reports import duration, next_phase

    nxt = next_phase(record)
    if nxt is None:
        return None
    local = "" if nxt.timezone == "UTC" else f"; {weekly.describe(nxt.due, nxt.timezone)}"
    what = f"{nxt.name} ({' -> '.join(f'{w}%' for w in nxt.weights)})"
    # The calendar says from when a phase may start; the cron, when a run comes to start it: a
    # week 2 due on Monday 00:00 waits for the 09:00 run, one due at 14:00 for next Monday's.
    at = scheduled(nxt.due) if scheduled is not None and speed == 1.0 else None
    run = "" if at is None else (f"the weekly schedule's advance_phase run at {utc(at)}, "
                                 + (f"in {duration(at - now)}, starts it" if at > now else
                                    f"late by {duration(now - at)} (no worker has started it yet), starts it"))
    if now < nxt.due:
        return (f"{what} due {utc(nxt.due)} (rollout clock{local}), in {duration(nxt.due - now)}"
                f"{on_the_wall(speed, nxt.due, now)}: {run or 'the first advance_phase run from then on starts it'}")
    if run:
        # Not overdue: no advance_phase run has begun since it fell due, and the schedule's next one
        # starts it. Said OVERDUE every Monday morning before the cron, it asked for a run by hand.
        return (f"{what} due since {utc(nxt.due)} (rollout clock{local}), {duration(now - nxt.due)} ago: {run} (or "
                "one run by hand now)")
    # The cron may fire a while after the phase falls due (a Monday 09:00 cron after a phase due
    # on Wednesday); it is overdue all the same, and a person can start it now.
    return (f"{what} OVERDUE: due since {utc(nxt.due)} (rollout clock{local}), {duration(now - nxt.due)} ago, and "
            "no advance_phase run has started it: the next one does (the weekly schedule's, or one run by hand now); "
            "one that ran since and did not start it says why in its log")


def what_users_get(service: Service, live: Weights | str) -> str | None:
    """Which version users get now, read from ECS and the load balancer: the image and task
    definition the stable service runs, and the canary's beside it while it takes a share of the
    traffic. The ledger's image is the rollout's, which after a rollback users no longer get.
    None: no deployer to ask (the row is left out)."""
    if service.deployer is None:
        return None
    t = service.targets

    def runs(name: str) -> str:
        task_definition = service.deployer.describe(name).task_definition
        return f"{service.deployer.image_of(task_definition)} ({name} runs {task_definition})"

    try:
        stable = runs(t.stable_service)
        if not isinstance(live, Weights):
            return f"{stable}; which share of the traffic is not known: the load balancer could not be read"
        if live.canary == 0:
            return f"{stable}: all the traffic"
        canary = runs(t.canary_service)
        return f"{live.stable}%: {stable}; {live.canary}%: {canary}" if live.stable else f"{canary}: all the traffic"
    except Exception as err:  # noqa: BLE001 - status still shows the ledger when ECS cannot be read
        from rollway.aws.errors import quoted

        # On one line, escaped: with no rollout recorded the row is printed as it is.
        return f"unreadable from ECS ({quoted(err)})"


def print_status(service: Service, record: RolloutRecord, live: Weights | str, paused: Any | None, limit: int,
                 canary_runs: Iterable[str] = (), unrestorable: str | None = None,
                 unheard: Sequence[Any] = (), now: float | None = None, speed: float = 1.0,
                 wall: float | None = None, users: str | None = None,
                 scheduled: Callable[[float], float | None] | None = None,
                 canary: tuple[str, int] | None = None) -> None:
    """The rollout's rows, what needs a person, and its latest transitions.

    ``canary_runs``: `canary` flow runs acting on the service that have not ended (asked only
    when the ledger's newest rollout has ended): they set the weights without a ledger.
    ``unrestorable``: a rollback owed or under way cannot restore a revision on the canary, and
    what finishes it instead (``no_revision_to_restore``).
    ``unheard``: answers the holder's run took after its process died (``unheard_by_holder``).
    ``now``: the rollout clock's time (its ``speed``), to say how far off the next weekly phase is
    (None: not said). ``wall``: the wall clock's (a rollback's claim is stamped on it), to tell a
    rollback still sending its notice from one whose run stopped while sending it.
    ``users``: which version users get now (``what_users_get``; None: not said).
    ``scheduled``: when the weekly schedule's run that starts the next phase begins (``scheduled_advance``).
    ``canary``: the canary service's name and desired count (``owed_notice_canary``; None: not read).
    """
    # `rollway abort` restores the recorded revision, or the one stable runs: with neither ACTIVE
    # it ends with the canary's step failed every time, and only the rollback flow given another
    # revision finishes the rollback.
    # Decided here once for every line that says how the rollback is finished: the stopped run's
    # line said "run the rollback again" under the one saying `rollway abort` cannot finish it.
    from rollway.reports import cannot_finish

    cannot = cannot_finish(unrestorable)
    finisher = cannot or "if no run is finishing it, `rollway abort` does"
    canary_runs = list(canary_runs)
    lapsed = lease_lapsed(record, wall, paused)
    from rollway.reports import next_phase

    # Between weekly phases the ledger's phase is "paused", which beside "weekly phase ..., passed"
    # read as a pause waiting for an answer: it waits for the schedule's next phase.
    nxt = next_phase(record)
    rows = [
        ("service", f"{service.name} (cluster {service.targets.cluster})"),
        ("rollout", record.rollout_id),
        # What the canary runs is the digest the tag named at the start, whatever the tag names now.
        ("image", record.image + (f" (pinned as {record.pinned_image})"
                                  if record.pinned_image not in (None, record.image) else "")),
        ("phase", record.phase.value if nxt is None else
         f"{record.phase.value} between weekly phases, nothing to answer: waiting for {nxt.name}, due {utc(nxt.due)} "
         "(rollout clock)"),
        # Several paused runs none of which owns the rollout say nothing of its stage.
        ("stage", _stage(record, paused is not None and not isinstance(paused, tuple), lapsed)),
        ("weights", f"ledger {record.weights}, load balancer {live} (stable/canary)"),
        *((("users get", users),) if users is not None else ()),
        ("owner", _owner_row(record, wall, paused)),
    ]
    if (held := held_row(record, paused)) is not None:
        rows.append(("held by", held))
    if record.weekly_phase_index >= 0 and not record.phased:
        # An unphased run records week 1 as it starts and no later one: its index says nothing.
        # "not followed", not "none": the history shows the weekly phase the run started in.
        rows.append(("weekly phase", "not followed: the run goes on through every stage (unphased)"))
    elif record.weekly_phase_index >= 0:
        # A promotion ends the last phase without setting weekly_phase_passed: it passed all the same.
        passed = ("passed" if record.weekly_phase_passed or record.phase is RolloutPhase.PROMOTED
                  else "running" if record.phase in (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED) else "not passed")
        waits = "" if nxt is None else "; the rollout waits for the next one"
        rows.append(("weekly phase", f"{_weekly_phase(record)}, {passed}{waits}"))
        upcoming = next_phase_row(record, now, speed, scheduled) if now is not None else None
        if upcoming is not None:
            rows.append(("next phase", upcoming))
    from rollway.reports import finalize_row, monitoring_row

    if (window := monitoring_row(record, now, speed, wall)) is not None:
        rows.append(("monitoring", window))
    # The weights read above settle what the row says of a "Finalized" notice owed (this is the newest rollout).
    if (finalizing := finalize_row(record, live if isinstance(live, Weights) else None, canary)) is not None:
        rows.append(("finalize", finalizing))
    # Each line of status on one line, as `rollway finalize` writes them: a line break in a name or
    # comment the ledger keeps as typed (keep='' below) printed a line of its own, read as status's.
    for key, value in rows:
        console.print(f"{key:<13}{shown(value, keep='')}", markup=False)
    if record.phase is RolloutPhase.ROLLING_BACK:
        from rollway.reports import RUN_AGAIN, begun_by, notice_refused, notice_unsure, stopped_traffic

        # The weights are expected to differ mid-rollback; what a person needs is how to finish it.
        started = rollback_start(record)
        why = escape(shown(f" ({begun_by(started)})", keep='')) if started is not None else ""
        # A lapsed claim's line below says what finishes it: said here too, it read twice.
        lapsed = claim_has_lapsed(record, wall)
        console.print(f"[yellow]a rollback was started{why} and is not recorded as finished"
                      f"{'' if lapsed else '; ' + escape(finisher)}[/yellow]")
        # Its advice only where running the rollback again finishes it; else the line that says
        # `rollway abort` cannot (just above, or the lapsed claim's below) is the advice.
        read = stopped_traffic(record, service.targets.stable_service, again=None if cannot else RUN_AGAIN)
        if read is not None:
            # What its stopped run read back, beside the load balancer's weights now: whether users
            # were still on the version rolled back when it stopped, and since when.
            console.print(f"[yellow]{escape(shown(read, keep=''))}[/yellow]")
        told = notice_sent(record, record.rollout_id)
        if told is not None:
            # Its run died after paging: finishing it pages nobody again, and a person should not page by hand.
            console.print(f"[yellow]its notice went out at {utc(told.at)} (SNS message "
                          f"{escape(told.message_id or '-')}, sent by {escape(shown(told.actor, keep=''))}): finishing it "
                          "does not "
                          "page people again[/yellow]")
        elif (unsure := notice_unsure(record, wall)) is not None:
            console.print(f"[yellow]{escape(shown(unsure, keep=''))}[/yellow]")
        if told is None and (refused := notice_refused(record)) is not None:
            # In the incident report's words: nobody was paged by it (a topic, policy or key to
            # fix), where status said nothing and a person took the rollback's page as sent.
            # SNS's error as the ledger keeps it, as it came: escaped, on one line, as the rows are.
            console.print(f"[yellow]{escape(shown(refused, keep=''))}: nobody was paged by it; the run that finishes "
                          "the rollback sends its own[/yellow]")
        if lapsed:
            # Its holder stopped renewing the claim (its run died): nobody is finishing it, and the
            # next rollback takes the claim over at once, as the incident report says.
            finish = cannot or "run `rollway abort` (or the rollback flow) to finish it"
            console.print(f"[yellow]carried out by {escape(shown(record.rollback_holder, keep=''))}, "
                          f"{escape(claim_lapsed(record))}: {escape(finish)}[/yellow]")
        elif record.rollback_holder:
            # Who is carrying it out: another rollback started now waits for that one while its
            # claim is renewed, and takes it over once the claim lapses. The claim is on the wall
            # clock, the history below on the rollout clock (hours apart under `rollway up`).
            renewed = wall_utc(record.rollback_expires, "a rollback started meanwhile waits for it")
            console.print(f"[yellow]carried out by {escape(shown(record.rollback_holder, keep=''))}, its claim renewed "
                          "until "
                          f"{escape(renewed)}[/yellow]")
    elif rejection_owed(record):
        # The run that recorded the rejection died before it began the rollback.
        owed = (f"`rollway abort` cannot carry it out ({unrestorable})" if unrestorable
                else "if no run is carrying it out, `rollway abort` does")
        console.print(f"[yellow]{escape(shown(rejection_reason(owed_rejection(record)), keep=''))}: a rollback is owed; "
                      f"{escape(owed)}[/yellow]")
    elif canary_runs:
        # The ledger's rollout has ended and a `canary` flow run, which keeps no ledger, drives
        # the service: weights unlike the ledger's are its shifts, not a hand's (they used to be
        # reported as drift).
        print_canary_runs(canary_runs)
    elif isinstance(live, Weights) and live != record.weights:
        console.print(f"[yellow]{escape(shown(unlike_the_ledger(record, live), keep=''))}[/yellow]")
    breach = breach_said(record)
    if breach is not None:
        # Listed only as a history entry, it read as a window that had closed cleanly.
        console.print(f"[yellow]breach not rolled back: {escape(shown(breach, keep=''))}[/yellow]")
    accepted = acceptance_said(record)
    if accepted is not None:
        # Finalized (or finalizing) on a person's word: who, which breach and why, as the ledger keeps them.
        console.print(f"breach accepted: {shown(accepted, keep='')}", markup=False)
    paging = page_said(record, service.targets.stable_service)
    if paging is not None:
        said, warning = paging
        said = shown(said, keep='')  # who sent it, and why one is owed, as the ledger keeps them
        console.print(f"[yellow]{escape(said)}[/yellow]" if warning else escape(said))
    unsent = window_page_refused(record)
    if unsent is not None:
        # The run ended Completed: listed only as a history entry, nobody took it for a page nobody got.
        console.print(f"[yellow]{escape(shown(unsent[0], keep=''))}[/yellow]")
    if record.phase is RolloutPhase.ROLLED_BACK:
        # What on-call paged by the rollback asks next: where the evidence is, and how to try again.
        from rollway.reports import begun_by

        started = rollback_start(record)
        why = f" ({begun_by(started)})" if started is not None and started.comment else ""
        console.print(f"rolled back{shown(why, keep='')}; {rolled_back_next(record)}", markup=False)
    if paused is not None:
        print_paused(paused)
    print_unheard(unheard)
    from rollway.reports import (as_listed, pause_notice_unsent, refusals_by_time_said, refusals_dropped_said,
                                 refused_at_pause)

    if (unsent := pause_notice_unsent(record)) is not None:
        # SNS refused the pause's notice (or lost its answer): logged alone, nobody knew an answer
        # was waiting. The whole line: pause_notice_unsent gives a sentence, not window_page_refused's pair.
        console.print(f"[yellow]{escape(shown(unsent, keep=''))}[/yellow]")
    for refusal in refused_at_pause(record):
        # The history below may hold too few rows to show it: an answer refused at the pause still
        # open is what the next person to answer needs, and the run only said it in its log and form.
        console.print(f"[yellow]refused answer: {escape(shown(refusal.actor, keep=''))} answered "
                      f"{escape(shown(refusal.said(), keep=''))} "
                      f"at {utc(refusal.at)} (rollout clock), refused: {escape(shown(refusal.reason, keep=''))}; the "
                      "pause is "
                      "still open[/yellow]")
    if (dropped := refusals_dropped_said(record)) is not None:
        # The history below lists the refused answers kept: without it, they read as all there were.
        console.print(dropped, markup=False)
    if (by_time := refusals_by_time_said(record)) is not None:
        # Listed below among the entries as the others are, they read as placed where recorded too.
        console.print(by_time, markup=False)

    history = as_listed(record)
    if not history:
        # Titled "last 0 transitions" over a table of headers alone, it read as a table that failed to load.
        console.print(f"{'history':<13}none recorded", markup=False)
    elif console.is_terminal:
        console.print(history_table(history, limit))
    else:
        for line in history_lines(history, limit):
            console.print(line, markup=False)


def print_canary_runs(runs: Iterable[str]) -> None:
    console.print(f"{'canary runs':<13}{', '.join(runs)}: the `canary` flow keeps no ledger; the load balancer's "
                  "weights are its runs', not the ledger's", markup=False)


def print_paused(paused: Any) -> None:
    """The run waiting for an answer, or (a tuple) the several that could be the service's."""
    if isinstance(paused, tuple):
        listed = ", ".join(f"{escape(str(run.name))} ({run.id})" for run in paused)
        console.print(f"[bold]waiting for an answer:[/bold] {len(paused)} paused flow runs could be this "
                      f"service's: {listed}; name one with `--flow-run ID` to `rollway promote` (approves) or "
                      "`rollway abort` (rejects and rolls back)")
        return
    try:
        check_attended(paused, look_again=False)
    except Unattended as dead:
        # Shown as waiting, a dead run was answered, and nothing acted on the answer.
        console.print(f"[bold]waiting for an answer:[/bold] {escape(str(dead))}{escape(_asking(paused))}; answering it "
                      "marks it Crashed and sends nothing: `rollway abort` rolls the rollout back, or start a new run")
        return
    console.print(
        f"[bold]waiting for an answer:[/bold] flow run {escape(str(paused.name))} ({paused.id}) is paused"
        f"{escape(_asking(paused))}; `rollway promote` approves, `rollway hold` holds and asks again, `rollway abort` rejects and rolls back"
    )


def _asking(run: Any) -> str:
    """What the run's pause asks, from its Paused state's message (set by rollway's approver):
    at a stage the judge could not pass, approving accepts that stage, and a person at a
    terminal sees no form to tell them so. Empty for a pause without a message."""
    state = getattr(run, "state", None)
    # On one line and its control characters escaped: it quotes the judge and, asked again, a person.
    message = on_one_line(str(getattr(state, "message", None) or ""))
    return f" ({message})" if message else ""


# --- the commands -----------------------------------------------------------------------


@contextmanager
def without_traceback(*answers: type[BaseException],
                      task_failures: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Log the in-process flow run's ``answers`` (refusals: the command says why, and nothing was
    changed) without their traceback: Prefect's engine logs every exception a flow raises with
    one, and a refused `rollway finalize` or `abort` printed some thirty lines of it on the
    terminal above its one-line answer, as if it had crashed. The run's log keeps the message;
    other exceptions keep their traceback.

    ``task_failures``: exceptions of its task runs logged without their traceback as well, where
    the flow turns every one into an answer that quotes it (a finalize that stopped names the
    step and AWS's words): the task engine logs a failed task's with one too. Its ERROR line stays
    off the terminal as the flow's does: the command's answer quotes it.

    The engine's lines of the flow's ``answers`` are left off the terminal alone (Prefect's console
    handler): there its ERROR line of one stood above the command's own ``error:`` line, the same
    words twice; so did the flow engine's closing "Finished in state Failed(...)" line (INFO),
    which quotes it whole. So is an error the flow paged in its own words (``flows.untraced.PAGED``:
    a rollback that could not move the traffic), whatever its kind: the page's line says it, and
    the engine's ERROR line and traceback of it stood below that. The run's log keeps those lines,
    and so does a handler of the user's own on the root logger (a log file); a paged error's
    traceback with them, unlike an answer's."""
    import logging

    from flows.untraced import PAGED

    answered = "rollway_answered"

    class Untraced(logging.Filter):
        def __init__(self, untraced: tuple[type[BaseException], ...], mark: bool = False) -> None:
            super().__init__()
            self.untraced, self.mark = untraced, mark
            self.runs: set[Any] = set()  # task runs whose failure was one of ``untraced``
            # Every failure of an exception (a Failed or TimedOut run; a crash is Crashed) is one:
            # then so is a run whose failure was never logged with its exception (a refusal the
            # task's retry condition does not retry), told only by its closing line.
            self.any_failure = any(issubclass(Exception, kind) for kind in untraced)

        def filter(self, record: logging.LogRecord) -> bool:
            # A task's retry notes (INFO) stay on the terminal: they say why a step takes long.
            said = self.mark and record.levelno >= logging.ERROR
            run = getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None) or record
            if record.exc_info and isinstance(record.exc_info[1], self.untraced):
                record.exc_info = record.exc_text = None
                if said:
                    setattr(record, answered, True)
                    self.runs.add(run)
            elif said and record.exc_info and getattr(record.exc_info[1], PAGED, False):
                # Off the terminal alone, its traceback kept: the run's log is told where a paged
                # failure (a defect among them) was raised, which the page does not say.
                setattr(record, answered, True)
                self.runs.add(run)
            elif said and self.any_failure and record.getMessage().startswith(("Finished in state Failed(",
                                                                                 "Finished in state TimedOut(")):
                setattr(record, answered, True)
            elif self.mark and run in self.runs and (said or record.getMessage().startswith("Finished in state")):
                # The engine's "Finished in state Failed(...)" line of the same failure, which
                # carries no exception to tell it by: the task engine's at ERROR, the flow engine's
                # at INFO, quoting the whole answer above the command's own line of it.
                setattr(record, answered, True)
            return True

    def unsaid(record: logging.LogRecord) -> bool:
        return not getattr(record, answered, False)

    # The engines' run loggers log to these loggers themselves (adapters over them), so a filter
    # here sees the record before any handler does.
    filters: list[tuple[Any, Any]] = [(logging.getLogger("prefect.flow_runs"), Untraced(answers, mark=True))]
    if task_failures:
        filters.append((logging.getLogger("prefect.task_runs"), Untraced(task_failures, mark=True)))
    # Prefect's console alone, as ``prefect_console.failed_steps_held`` filters it: a handler of the
    # user's own on the root logger (a log file) lost the engine's ERROR line with every other root
    # handler, the failure nowhere in that file. The run loggers' own handlers (the run's log on the
    # API) are not the root's: they keep it.
    from rollway.cli.prefect_console import console_handlers

    filters += [(handler, unsaid) for handler in console_handlers()]
    for logger, untraced in filters:
        logger.addFilter(untraced)
    try:
        yield
    finally:
        for logger, untraced in filters:
            logger.removeFilter(untraced)


def api_unreachable(err: Exception) -> str:
    """What to say when the Prefect API could not be reached (or refused the request)."""
    from prefect.settings import PREFECT_API_URL

    return passwords_hidden(f"cannot reach the Prefect API ({PREFECT_API_URL.value() or 'ephemeral'}): {err}; is "
                            "`rollway up` running, and PREFECT_API_URL set to the URL it printed?")


def reporting(command: Callable[..., int]) -> Callable[..., int]:
    """Print an OpsError as a one-line error and exit 1, instead of a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        import httpx
        from botocore.exceptions import BotoCoreError, ClientError

        from rollway.api_error import ApiError
        from rollway.deadline import Unanswered
        from rollway.ledger import LedgerError

        loaded = _loaded_targets.set(None)
        try:
            return command(*args, **kwargs)
        except UsageError as err:
            errors.print(f"[red]error:[/red] {escape(str(err))}")
            return 2
        except (OpsError, TimeoutError, Unanswered, LedgerError) as err:
            # LedgerError: the ledger's refusals (a lease held, a rollout superseded) say what
            # happened in their message (names and AWS's words, which are not markup).
            # Unanswered: a bounded read that ran out names who did not answer (no longer a TimeoutError).
            errors.print(f"[red]error:[/red] {escape(str(err))}")
            return 1
        except (httpx.HTTPError, ApiError) as err:  # ApiError: a block's read (flows.env.load_targets)
            errors.print(f"[red]error:[/red] {escape(api_unreachable(err))}")
            return 1
        except RuntimeError as err:
            # A flow run in this process (finalize's, abort's) whose API went away after the
            # command's own reads: Prefect's engine says so as a RuntimeError ("Failed to reach API
            # at ...") raised from the connection's error, which printed a traceback.
            if (unreachable := _prefect_error_behind(err)) is None:
                raise
            errors.print(f"[red]error:[/red] {escape(api_unreachable(unreachable))}")
            return 1
        except (BotoCoreError, ClientError) as err:
            # The commands read and act on what a rollout's worker does (the ledger, the load
            # balancer, ECS): a refusal names the statement of its policy.
            from rollway.aws.denied import ROLLOUT_POLICY, is_denied, permission_denied
            from rollway.aws.errors import quoted

            targets = _loaded_targets.get()
            if is_denied(err):  # the IAM action and the statement granting it, not boto's bare text
                # The commands' one DynamoDB table is the ledger: it stands for the resource a refusal
                # names none of, which named the flags' statement beside the ledger's (both grant GetItem).
                ledger = targets is not None and getattr(err, "operation_name", None) in _DYNAMODB_CALLS
                table = targets.rollouts_table if ledger else None
                denied = permission_denied(err, job=ROLLOUT_POLICY, resource=table, targets=targets)
                errors.print(f"[red]error:[/red] {escape(str(denied))}")
                return 1
            if missing := missing_table(err, targets):
                errors.print(f"[red]error:[/red] {escape(missing)}")
                return 1
            operation = getattr(err, "operation_name", None) or "a call"
            if refused := credentials_refused(err, f"dynamodb {operation}" if operation in _DYNAMODB_CALLS
                                              else operation):
                errors.print(f"[red]error:[/red] {escape(refused)}")
                return 1
            # AWS's words one line, escaped (an escape sequence in them acted on the terminal),
            # still naming the call, as boto's text did.
            said = quoted(err, call=True)
            errors.print(f"[red]error:[/red] AWS refused or could not be reached: {escape(said)}")
            return 1
        finally:
            _loaded_targets.reset(loaded)

    return run


def credentials_refused(err: BaseException, call: str) -> str | None:
    """What to do about AWS refusing the credentials themselves on ``call`` (expired, keys it does
    not know, a signature or a date it cannot take), or None for any other error.

    ``load_account`` proves the credentials before a command's first call; a session that expires
    after that (its last minutes, an abort waiting out a run) ended on "AWS refused or could not be
    reached" and boto's text, which sent people to the network rather than to the keys.
    """
    from botocore.exceptions import ClientError

    from rollway.aws.errors import aws_message, credentials_remedy, request_out_of_date, unusable_credentials

    if not isinstance(err, ClientError) or not (unusable_credentials(err) or request_out_of_date(err)):
        return None
    return f"AWS refused the credentials on {call} ({aws_message(err)}): {credentials_remedy(err, call)}"


# The DynamoDB calls the commands make, on the ledger and the flags table.
_DYNAMODB_CALLS = frozenset({"Query", "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Scan", "TransactWriteItems"})


def missing_table(err: BaseException | None, targets: Targets | None, field: str = "rollouts_table") -> str:
    """What a DynamoDB "Requested resource not found" means to a person, or "" for any other error.

    DynamoDB's words name neither the table nor the fix: a targets block whose rollouts_table is
    misspelt, or an account or region whose tables were never created, read as AWS failing. The
    operator commands read no other table themselves, so it is the ledger's; `rollway flags` reads
    the flags table (``field``): said as `rollway report` says it.
    """
    from flows.reports import unreadable_table

    response = getattr(err, "response", None) or {}
    if (targets is None or response.get("Error", {}).get("Code") != "ResourceNotFoundException"
            or getattr(err, "operation_name", None) not in _DYNAMODB_CALLS):
        return ""
    refused = unreadable_table(err, targets, field)
    return str(refused) if refused is not None else ""


@reporting
def status(*, targets_block: str | None, credentials_block: str | None, history: int = 10) -> int:
    """Print the newest rollout of the service, the live weights and the paused run."""
    from prefect.client.orchestration import get_client

    if history < 1:
        raise UsageError(f"--history {history}: show at least 1 transition")
    service = connect(targets_block, credentials_block)
    record = ledger_read(service, lambda ledger: ledger.get(service.name))
    unrecorded = f"no rollout recorded for {service.name} in table {service.targets.rollouts_table}"
    unread: Exception | None = None
    try:
        live: Weights | str = live_weights(service)
    except Exception as err:  # status still shows the ledger when the ALB cannot be read
        from rollway.aws.errors import quoted

        # On one line, escaped: with no rollout recorded the row is printed as it is.
        live, unread = f"unreadable ({quoted(err)})", err
    # Asked even when the ledger's newest rollout has ended, or there is none: a `canary` flow
    # run keeps no ledger, and its pause is still the one `rollway promote` and `abort` answer.
    with get_client(sync_client=True) as client:
        try:
            paused = find_paused_run(client, service, record)
        except NoPausedRun:
            paused = None
        except AmbiguousRun as several:  # none owns the rollout: show them all, as promote names them
            paused = several.runs
        # With no rollout under way in the ledger, a `canary` flow run may be driving the service.
        canary_runs = live_canary_runs(client, service) if record is None or record.phase.terminal else []
    unheard = unheard_by_holder(record) if paused is None else []
    if record is None:
        none = f"none: {unrecorded} (a `canary` flow run keeps no ledger)"
        if paused is None and not canary_runs:
            # A first `rollway status` on a fresh `rollway up` lands here: no rollout yet is no
            # error (it was one, exit 1, as if the install were broken); say how to start one,
            # unless the block names what AWS does not know, where a rollout could only fail.
            # The weights read above, not read again: a load balancer that did not answer would hold it twice.
            if unknown := _unknown_targets(service, unrecorded, _read_once(live, unread)):
                raise NoRollout(unknown)
            none = f"none yet: {unrecorded}; {HOW_TO_START}"
        console.print(f"{'service':<13}{service.name} (cluster {service.targets.cluster})", markup=False)
        console.print(f"{'rollout':<13}{none}", markup=False)
        console.print(f"{'weights':<13}load balancer {live} (stable/canary)", markup=False)
        if (users := what_users_get(service, live)) is not None:
            console.print(f"{'users get':<13}{users}", markup=False)
        if canary_runs:
            print_canary_runs(canary_runs)
        if paused is not None:
            print_paused(paused)
        return 0
    unrestorable = None
    if record.phase is RolloutPhase.ROLLING_BACK or rejection_owed(record):
        unrestorable = no_revision_to_restore(service, record)
    clock = status_clock(record)
    print_status(service, record, live, paused, history, canary_runs=canary_runs, unrestorable=unrestorable,
                 unheard=unheard, now=clock.build().now() if clock else None, speed=clock.speed if clock else 1.0,
                 wall=time.time(), users=what_users_get(service, live),
                 scheduled=functools.partial(scheduled_advance, targets_block=service.targets_block),
                 canary=owed_notice_canary(service, record, live))
    return 0


def owed_notice_canary(service: Service, record: RolloutRecord, live: Weights | str) -> tuple[str, int] | None:
    """The canary service's name and the tasks it asks for, read (one DescribeServices) only when
    ``record`` owes a "Finalized" notice and the load balancer sends all the traffic to the stable
    service: then the canary's count alone settles whether a finalize run again sends the notice
    late, which status's row left to the reader ("while the canary service is at 0 tasks"). None
    otherwise, or when ECS cannot be read (the row says the condition, as before)."""
    from rollway.finalize import ALL_STABLE, notice_owed

    if service.deployer is None or live != ALL_STABLE or notice_owed(record) is None:
        return None
    name = service.targets.canary_service
    try:
        return name, service.deployer.describe(name).desired
    except Exception:  # noqa: BLE001 - status still shows the row, with the canary's condition said
        return None


def scheduled_advance(due: float, targets_block: str | None) -> float | None:
    """When the advance_phase run that starts a weekly phase due at ``due`` (wall seconds) begins:
    the first run the schedule has created for then or later, or, once ``due`` has passed, its
    next one (late or not). None when an advance_phase run has begun since ``due`` (it said why
    it started nothing in its log), when none is scheduled (a paused schedule, none deployed), or
    when the Prefect API cannot say: the row then says what it always did.

    Only the rollout's own runs are read: those of the advance_phase deployments whose
    ``targets_block`` parameter is the one status was given, picked out by the server, and of
    those the runs that kept it (one started from the deployment's form may name another).
    Read across the server, another service's scheduled run was named as this rollout's, and
    its run begun since ``due`` said this phase was overdue."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    advance = filters.FlowFilter(name=filters.FlowFilterName(any_=["advance_phase"]))
    since = datetime.fromtimestamp(due, timezone.utc)

    def ours(found: Iterable[Any]) -> list[Any]:
        # Deployments and runs alike: those whose targets_block parameter is status's.
        return [item for item in found if (item.parameters or {}).get("targets_block") == targets_block]

    try:
        with get_client(sync_client=True) as client:
            deployments = [d.id for d in ours(client.read_deployments(flow_filter=advance))]
            if not deployments:
                return None
            of_ours = filters.FlowRunFilterDeploymentId(any_=deployments)
            passed = due <= time.time()  # read once: both reads below ask whether the phase fell due
            if passed and ours(client.read_flow_runs(
                    flow_filter=advance,
                    flow_run_filter=filters.FlowRunFilter(
                        deployment_id=of_ours,
                        # Begun: the API reads an unstarted run's expected start as its start time.
                        start_time=filters.FlowRunFilterStartTime(after_=since, is_null_=False)))):
                return None
            upcoming = ours(client.read_flow_runs(
                flow_filter=advance, sort=FlowRunSort.EXPECTED_START_TIME_ASC,
                flow_run_filter=filters.FlowRunFilter(
                    deployment_id=of_ours,
                    state=filters.FlowRunFilterState(type=filters.FlowRunFilterStateType(any_=[StateType.SCHEDULED])),
                    # A run the schedule made for before the phase falls due finds it not due.
                    **({"expected_start_time": filters.FlowRunFilterExpectedStartTime(after_=since)}
                       if not passed else {}))))
    except Exception:  # noqa: BLE001 - a read for a row's words: status shows the rest either way
        return None
    start = upcoming[0].expected_start_time if upcoming else None
    return start.timestamp() if start is not None else None


def between_phases_clock(record: RolloutRecord) -> ClockSettings | None:
    """The clock a rollout holding between weekly phases ran on (``recorded_clock``), to read its
    calendar against; None for any other rollout, which asks the Prefect API nothing more."""
    from rollway.reports import next_phase

    return recorded_clock(record) if next_phase(record) is not None else None


def status_clock(record: RolloutRecord) -> ClockSettings | None:
    """The clock status reads a rollout's rows against: between weekly phases (its calendar,
    ``between_phases_clock``) or while its promotion owes a monitoring window (whether it is still
    open); None otherwise. Without it, the monitoring row of a promotion in its window's first
    minute said "no run closed it ... run `progressive_rollout` again" while its run watched it."""
    from rollway.reports import window_owed

    clock = between_phases_clock(record)
    if clock is None and window_owed(record):
        clock = recorded_clock(record)
    return clock


def unheard_by_holder(record: RolloutRecord | None) -> list:
    """The answers the flow run holding an unfinished rollout was resumed with after its process
    died (``flows.approvals.unheard_answers``), or none: after it had stopped saying it waits, which
    a run whose process lives but whose writes the Prefect API refuses does too (``print_unheard``).
    The person who answered it in the Prefect UI believed the rollout went on, or rolled back. Not
    found is not an error here: status shows the rest either way."""
    from flows.approvals import unheard_answers

    run_id = owner_run_id(record) if record is not None and not record.phase.terminal else None
    if run_id is None or record.phase is RolloutPhase.ROLLING_BACK:
        return []
    try:
        return unheard_answers(run_id)
    except Exception:  # noqa: BLE001 - a look for a warning; the status stands without it
        return []


def record_unheard(service: Service, record: RolloutRecord, now: float) -> None:
    """Before an abort rolls the rollout back: record the answers its holder's run took after its
    process died (``unheard_by_holder``), as the run taking a rollout over does, so the rolled-back
    rollout's history still says who answered it, and how. Record-keeping: a write the ledger
    refuses is said, and the abort goes on."""
    from rollway.approvals import UNHEARD_AFTER, not_yet_recorded, unheard_transitions
    from rollway.aws.ledger import write_or_why
    from rollway.ledger import LedgerError

    # Less those an earlier abort recorded before it stopped short of the rollback (Ctrl-C, a
    # throttled ledger): its retry recorded them a second time.
    unheard = not_yet_recorded(unheard_by_holder(record), record.history)
    if not unheard:
        return
    # At the stage each answer's pause asked about, as the rollback flow records it.
    entries = unheard_transitions(unheard, now, then="`rollway abort` rolls the rollout back",
                                  history=record.history)
    try:
        failed = write_or_why(lambda: service.ledger.record(
            service.name, owner=None, now=now, rollout=record.rollout_id, transition=entries[0],
            followed_by=tuple(entries[1:])))
    except LedgerError as refused:  # another rollout is the newest, say: the abort below says so itself
        failed = str(refused)
    for u in unheard:
        said = (f"flow run {u.run} was answered {u.answer.action} by {u.answer.who} at {wall_utc(u.answered_at)} "
                f"{UNHEARD_AFTER}: nothing acted on it")
        if failed is None:
            console.print(f"{said}; recorded in the ledger", markup=False)
        else:
            errors.print(f"[yellow]warning:[/yellow] {escape(said)}; the ledger could not record it "
                         f"({escape(failed)})")


def print_unheard(unheard: Sequence[Any]) -> None:
    """Say that the holder's run took answers nothing acted on, and what to do."""
    from rollway.approvals import UNHEARD_AFTER

    for u in unheard:
        console.print(f"[yellow]flow run {escape(u.run)}, which holds the rollout, was answered "
                      f"{escape(u.answer.action)} by {escape(u.answer.who)} "
                      f"at {wall_utc(u.answered_at)} "
                      f"{UNHEARD_AFTER} (it last said it waited at {utc(u.silent_since)}): nothing acted on "
                      "the answer[/yellow]")
    if unheard:
        # Silent is not dead (``stopped_waiting``): said as dead, a live run whose writes a proxy
        # refused was marked Crashed by the progressive_rollout the advice named, and stopped without
        # acting on the answer. Its log stops either way; its worker tells. The UI's "Change state"
        # is offered only for a run that has ended, and a cancellation waits for the run's own
        # process: "set it to Crashed or Failed in the Prefect UI" could not be done.
        console.print("[yellow]that run stopped saying it waits: its process died, or it lives and the Prefect API "
                      "(or a proxy in front of it) refuses its writes, and its log stops either way. To tell, look "
                      "at the worker that ran it (its host, container or pod, and the worker's own log) and at the "
                      "API's or proxy's log for refused writes. If its process is gone, it shows Running with nothing "
                      "running it: run progressive_rollout, which marks it Crashed, takes the rollout over, records "
                      "the answer and asks again, or `rollway abort` to roll back. If it lives, fix what refuses its "
                      "writes and leave it: it acts on the answer once it reads it (the rollout's history here then "
                      "shows the answer); progressive_rollout would mark it Crashed and stop it without acting on "
                      "the answer. `rollway abort` rolls back in either case[/yellow]")


def no_revision_to_restore(service: Service, record: RolloutRecord) -> str | None:
    """Why a rollback of ``record`` cannot restore a revision on the canary, and what finishes it,
    or None when it can (or ECS cannot be read: status still shows the rest, as it did;
    ``flows.rollback.no_revision_to_restore``)."""
    from flows.rollback import no_revision_to_restore as read_from_ecs

    if service.deployer is None:
        return None
    try:
        return read_from_ecs(service.deployer, service.targets, record)
    except Exception as err:  # noqa: BLE001 - a report, not a step: the advice stays as it was
        from rollway.aws.errors import quoted

        # AWS's and botocore's words on one line, escaped, as an error's are (a ParamValidationError is several lines).
        errors.print(f"[yellow]warning:[/yellow] could not read from ECS which revision a rollback would restore "
                     f"({escape(quoted(err))})")
        return None


def live_canary_runs(client: Any, service: Service) -> list[str]:
    """`canary` flow runs under way (pending, running, paused, cancelling) whose targets_block
    parameter is ``service``'s, as ``paused_runs`` finds them, for a person to read."""
    from prefect.client.schemas.objects import StateType

    from flows.env import CANARY_FLOW

    under_way = [StateType.PENDING, StateType.RUNNING, StateType.PAUSED, StateType.CANCELLING]
    return [f"{run.name} ({run.id}, {_state_name(run)})"
            for run in runs_on(client, service.targets_block, [CANARY_FLOW], under_way)]


def who_answers(approver: str | None) -> str:
    """The name an answer is recorded under: ``--approver`` without surrounding spaces, or the OS
    user when it is omitted.

    Raises:
        UsageError: ``--approver`` was given blank (it used to record the OS user instead), or it
            was left out and the OS user has no name.
    """
    if approver is None:
        try:
            return getpass.getuser()
        except (OSError, KeyError, ImportError) as err:
            # A container's uid may have no passwd entry and no USER/LOGNAME: say so, not a traceback.
            raise UsageError(f"cannot tell who you are ({err}): pass --approver to name who answers") from None
    if not approver.strip():
        raise UsageError(f"--approver {approver!r} is blank: name who answers, or leave --approver out "
                         "to answer as your user name")
    return approver.strip()


def check_wait(wait_seconds: float) -> None:
    """Refuse a ``--wait-seconds`` the waits cannot keep: NaN or infinity never reaches its
    deadline, so the abort waited for ever on a run whose process had died.

    Raises:
        UsageError: not 0 or a positive number of seconds up to a day; nothing was read or changed.
    """
    from flows.params import MAX_WAIT_SECONDS

    if not (math.isfinite(wait_seconds) and 0 <= wait_seconds <= MAX_WAIT_SECONDS):
        raise UsageError(f"--wait-seconds {as_given(wait_seconds)}: must be 0 (do not wait) or a positive number of "
                         f"seconds, at most {as_given(MAX_WAIT_SECONDS)} (a day); nothing was done")


def _answer(action: str, approver: str, comment: str, weight: int | None = None, *,
            comment_option: str = "--comment") -> dict[str, Any]:
    """The answer the Resume form would send, checked against the form's own rules before
    anything is read.

    The server checks a resume against the form's schema and refuses one that breaks it (a
    comment over 1,000 characters, say): found only then, an abort did not abort. The same words
    go into the ledger and the notice when no run is paused, so they are bounded alike.

    Raises:
        UsageError: an option breaks the form's rules; nothing was read or changed.
    """
    from pydantic import ValidationError

    from flows.approvals import ApprovalInput
    from flows.params import encodable

    answer: dict[str, Any] = {"action": action, "approver": approver, "comment": comment}
    if weight is not None:
        answer["next_weight"] = weight
    options = {"approver": "--approver", "comment": comment_option, "next_weight": "--weight"}
    try:
        # Said as the rollback flow says it: pydantic's "unable to parse raw data as a unicode
        # string" did not tell a person what was wrong with the text they typed.
        for field in ("approver", "comment"):
            encodable(answer[field], options[field])
    except ValueError as err:
        raise UsageError(f"{err}; nothing was done") from None
    try:
        ApprovalInput.model_validate(answer)
    except ValidationError as err:
        problems = "; ".join(_form_problem(e, options, weight) for e in err.errors())
        raise UsageError(f"{problems}; nothing was done") from None
    return answer


def _form_problem(error: Any, options: dict[str, str], weight: int | None) -> str:
    """One problem the Resume form's rules found, named by its option. A weight is repeated as
    given, as every other refusal of a number does: "--weight: Input should be greater than or
    equal to 1" left the person to find what they typed, and what a weight may be."""
    field = str(error["loc"][0]) if error["loc"] else ""
    if field == "next_weight":
        return f"--weight {weight}: must be the canary weight of a later stage of the rollout, from 1 to 100"
    if field == "approver" and error["type"] == "string_pattern_mismatch":
        # The form's pattern, quoted as pydantic does, told nobody what was wrong with the name. Not
        # "the run's log" (ApprovalAnswer.who), nor "the pages" (SnsNotifier.notify escapes escape
        # sequences and overrides): the ledger keeps it as typed, in the entries every later reader takes.
        return f"--approver {error['input']!r}: {name_rule(error['input'])}: the ledger keeps it as typed"
    return f"{options.get(field, field) if field else 'the answer'}: {error['msg']}"


def _paused(service: Service, flow_run: UUID | None,
            nothing_done: str = "nothing was answered") -> tuple[RolloutRecord | None, Any]:
    """The newest rollout and its paused run; ``nothing_done`` ends a refusal (a TargetsUnknown, a --flow-run
    naming no paused run)."""
    from flows.approvals import bounded_client

    record = ledger_read(service, lambda ledger: ledger.get(service.name), nothing_done)
    with bounded_client() as client:
        try:
            return record, find_paused_run(client, service, record, flow_run, nothing_done)
        except NoPausedRun as nothing:
            if record is None and flow_run is None:
                unrecorded = f"no rollout recorded for {service.name} in table {service.targets.rollouts_table}"
                if unknown := _unknown_targets(service, f"{unrecorded}; {nothing_done}"):
                    raise TargetsUnknown(unknown) from nothing
            raise


def _unknown_targets(service: Service, unrecorded: str, weights: Callable[[], object] | None = None) -> str | None:
    """The refusal naming what of the targets block AWS does not know, or None when it knows them all.
    ``weights``: the read of the load balancer's weights, when made already (``live_weights`` by default)."""
    from rollway.cli.unknown_targets import unknown_message, unknown_targets

    unknown = unknown_targets(service.targets, weights or (lambda: live_weights(service)), service.deployer)
    return unknown_message(service.targets, unknown, service.targets_block, unrecorded) if unknown else None


def _read_once(live: Weights | str, unread: Exception | None) -> Callable[[], object]:
    """A read of the weights already made: its answer ``live``, or its error ``unread``, again."""
    def read() -> object:
        if unread is not None:
            raise unread
        return live

    return read


def check_next_weight(record: RolloutRecord, weight: int) -> list[int]:
    """Refuse a ``--weight`` the run would refuse (it would only ask again), before resuming it.

    Returns:
        The weights of the stages the run skips to reach ``weight``.

    Raises:
        OpsError: the weight is not one of the rollout's stages above where it stands, is past
            the weekly phase a phased run stops at, or the run waits at a stage the judge could
            not pass (approving there accepts the stage; the run takes no next weight).
    """
    from pydantic import ValidationError

    from rollway.spec import RolloutSpec, phase_end_stage

    try:
        spec = RolloutSpec.from_record(record.spec_json)
    except ValidationError:
        raise OpsError(f"rollout {record.rollout_id} was recorded with a spec today's rules refuse, so its run "
                       "cannot resume it; nothing was approved. `rollway abort` rolls it back") from None
    if record.stage_index >= 0 and not record.stage_passed:
        # The run's pause is then inconclusive or metrics: it refuses any next weight and asks again,
        # which from here would read as approved (the refusal is shown in the UI's form only).
        raise OpsError(f"--weight {weight}: the run waits at {record.weights.canary}%, a stage the judge could not "
                       "pass: approve without --weight to accept it; nothing was approved")
    weights = spec.weights
    if record.phased and spec.phases:
        # The same end as the run's: a phased run never shifts past its weekly phase.
        index = max(record.weekly_phase_index, 0)
        if index >= len(spec.phases):
            # An older record, or its spec edited between runs: where the phase ends is not known.
            raise OpsError(f"--weight {weight}: rollout {record.rollout_id} is at weekly phase {index + 1}, past the "
                           f"{len(spec.phases)} weekly phases of its recorded spec, so where the run stops is not "
                           "known; nothing was approved. `rollway status` shows where it stands, and `rollway abort` "
                           "rolls it back")
        phase, end = spec.phases[index], phase_end_stage(spec, index) + 1
        if weight in weights[end:]:
            raise OpsError(f"--weight {weight} is past {phase.name}, which ends at {weights[end - 1]}%: the run "
                           f"stops there (`advance_phase` starts the next phase); nothing was approved")
    later = [w for w in weights if w > record.weights.canary]
    if weight not in later:
        raise OpsError(f"--weight {weight} is not a stage after {record.weights.canary}% (choose from {later}); "
                       "nothing was approved")
    return [w for w in later if w < weight]


def flow_name(run: Any) -> str:
    """The name of the flow ``run`` is a run of (the run itself holds only the flow's id)."""
    from flows.approvals import bounded_client

    with bounded_client() as client:
        return client.read_flow(run.flow_id).name


def check_canary_weight(run: Any, live: Weights, weight: int) -> list[int] | None:
    """Refuse a ``--weight`` a paused `canary` flow run would refuse (it would only ask again).

    That run keeps no ledger: where it stands is the canary's live weight, and its stages are its
    ``spec`` parameter. It pauses for an approval at the live weight, before a later stage, and
    takes only a stage after it (and none at a stage the judge could not pass, which it checks).

    Returns:
        The weights of the stages the run skips to reach ``weight``; None when its spec is
        unreadable (the run itself then says what it does).

    Raises:
        OpsError: the weight is not one of the run's stages after the live canary weight.
    """
    from pydantic import ValidationError

    from rollway.spec import RolloutSpec

    try:
        weights = RolloutSpec.model_validate((run.parameters or {}).get("spec")).weights
    except ValidationError:
        return None  # a spec the run could not have started with: nothing to check against
    later = [w for w in weights if w > live.canary]
    if weight not in later:
        raise OpsError(f"--weight {weight} is not a stage of flow run {run.name} after the canary's "
                       f"{live.canary}% (choose from {later}); nothing was approved")
    return [w for w in later if w < weight]


def skipping(weight: int | None, skipped: list[int] | None) -> str:
    """What an approval with ``--weight`` does, for the line that confirms it: "approved" alone
    read as the routine next shift (and the pause's own words name that next stage), so a person
    who skipped ahead could not tell from it that the stages in between would not run.

    ``skipped`` is None when the stages the run skips are not known here (its spec unreadable)."""
    if weight is None:
        return ""
    if skipped is None:
        return f", asked to skip ahead to {weight}%: the run shifts there if it is a later stage of its rollout"
    if not skipped:
        return f", to {weight}%: the next stage, none skipped"
    return (f", skipping {'the stage' if len(skipped) == 1 else 'the stages'} at "
            f"{', '.join(f'{w}%' for w in skipped)}: the rollout goes to {weight}% next")


ANSWER_SEEN_SECONDS = 10.0
"""How long `promote`, `hold` and `abort` read the ledger, once the server took the answer, for the run to
record whether it took it (an approval after one more look at the canary)."""


def answer_seen(service: Service, record: RolloutRecord | None, run: Any, who: str, action: str,
                poll_seconds: float = 0.2) -> tuple[str, str]:
    """Whether the run that owns ``record`` took ``who``'s ``action`` just resumed into it:
    ("taken", "") once the ledger records it, ("refused", why) once the run records it as not
    applied, ("rolled back", why) when it ends with the rollout rolled back without recording it
    (its watch rolled back while the Prefect API was away, and the answer landed as the API came
    back), ("ended", why) when the run failed (or crashed, was cancelled) without recording either
    (it records an answer it takes before acting on it: ended first, it took none; ``why`` is its
    final state and message),
    ("late", "") when it recorded neither within ``ANSWER_SEEN_SECONDS``, ("", "") when it cannot
    be told: the run keeps no ledger of its own (a `canary` run), or never said it waits (an older
    rollway's, or its process died: nothing would record anything).

    The server takes a resume that lands during the look ending the pause (the canary failed, its
    traffic moved), and the run records that answer as not applied and rolls back; so too an
    approval whose one more look finds the canary failing. Told "resumed", the person went away
    believing the rollout went on, or held. A run that finds, on taking the answer, that another
    run drove its rollout meanwhile (took the lapsed lease and promoted it) ends without acting on
    it: told "resumed to roll back", on-call left a promoted canary in production.
    """
    from flows.approvals import bounded_client, waiting_stamps

    if record is None or owner_run_id(record) != run.id:
        return "", ""
    key = getattr(run.state.state_details, "pause_key", None) if run.state is not None else None
    deadline = time.monotonic() + ANSWER_SEEN_SECONDS
    # Reads given up on as the bound runs out: the account's clients retry for minutes.
    ledger = service.ledger_reading(ANSWER_SEEN_SECONDS) if service.ledger_reading is not None else service.ledger
    try:
        with bounded_client() as client:
            if not key or not waiting_stamps(client, run.id, key):
                return "", ""
            ended = None
            while True:
                now = ledger.get(record.service)
                if now is None or now.rollout_id != record.rollout_id:
                    return "", ""
                if any(t.actor == who and t.kind == action for t in now.history if t not in record.history):
                    return "taken", ""
                for refused in now.refused_answers:
                    if refused not in record.refused_answers and refused.actor == who and refused.action == action:
                        return "refused", refused.reason
                if ended is not None:
                    # Read after the run ended: an answer it recorded just before ending is seen above.
                    said = " ".join(str(ended.state.message or "").split())
                    return "ended", f"it ended {_state_name(ended)} without recording it" + (f": {said}" if said else "")
                latest = client.read_flow_run(run.id)
                if is_final(latest) and latest.state.is_completed():
                    # Read again: the ledger read above may predate the end of the rollback the run
                    # finished before it ended ("already rolling back" of a rollout rolled back).
                    now = ledger.get(record.service) or now
                    if now.phase in (RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK):
                        # Its watch rolled back while the Prefect API was away, and the answer landed
                        # as it came back: the run takes it, and the closed rollout records nothing.
                        # Not "refused": that run rolls back after the answer, this one already had.
                        return "rolled back", already_rolled_back(now)
                    return "", ""  # nothing to tell by: a run that ends on a refusal fails (RolloutMovedOn)
                if is_final(latest):
                    ended = latest
                    continue
                if time.monotonic() >= deadline:
                    return "late", ""
                time.sleep(poll_seconds)
    except Exception:  # noqa: BLE001 - the answer was sent: only what is said of it is at stake
        return "", ""


NOT_TAKEN = ("refused", "ended", "rolled back")
"""What ``answer_seen`` says of an answer the run did not take: `promote` and `hold` then exit 1."""


def already_rolled_back(record: RolloutRecord) -> str:
    """Why an answer found ``record`` rolled back (or rolling back) before its run took it: who began
    the rollback, why and when, as the ledger records it."""
    from rollway.reports import begun_by

    start = rollback_start(record)
    begun = f" (begun by {' '.join(begun_by(start).split())} at {utc(start.at)} (rollout clock))" if start else ""
    done = "rolled back" if record.phase is RolloutPhase.ROLLED_BACK else "rolling back"
    return f"the rollout was already {done}{begun}"


def _not_recorded_yet(seen: str) -> str:
    """What the command adds when the run did not record within the bound whether it took the answer."""
    if seen != "late":
        return ""
    return (f"; it has not recorded taking it yet (within {seconds_said(ANSWER_SEEN_SECONDS)}): `rollway status` shows whether "
            "it did")


_COMMAND_OF = {"approve": "promote", "hold": "hold", "reject": "abort"}


def record_refused(service: Service, record: RolloutRecord | None, run: Any, answer: dict[str, Any],
                   why: BaseException) -> None:
    """Record beside ``record``'s history the ``answer`` this command could not give to ``run``, the
    run driving it (``why``: answered first, timed out, found silent), as its run records one it
    refuses (``RefusedAnswer``): said only on this terminal, the report read after an incident
    showed no one had tried to answer, nor when. Appended lease-free (``Ledger.refuse``): the
    run's own appends are kept. Record-keeping: a write the ledger refuses is said, and the
    command's own refusal stands. A run driving no rollout of this ledger (a `canary` run) has none.
    """
    from rollway.aws.ledger import write_or_why
    from rollway.ledger import LedgerError, RefusedAnswer

    if record is None or owner_run_id(record) != run.id:
        return
    asked = record.open_pause
    pause = next((t for t in reversed(record.history) if t.kind == "pause"), None)
    # On the run's own clock (sped up under `rollway up`), among the entries it stamped.
    entry = RefusedAnswer(
        at=(_clock_of(run) or ClockSettings()).build().now(), actor=answer["approver"], action=answer["action"],
        next_weight=answer.get("next_weight"), comment=str(answer.get("comment") or "").strip() or None,
        to_stage=asked.stage if asked is not None else pause.to_stage if pause is not None else None,
        question=asked.question if asked is not None else None,
        reason=f"given with `rollway {_COMMAND_OF[answer['action']]}`, not taken: {' '.join(str(why).split())}",
        run=f"{run.name} ({run.id})")
    try:
        failed = write_or_why(lambda: service.ledger.refuse(service.name, rollout=record.rollout_id, answer=entry),
                              service.targets)
    except LedgerError as refused:
        failed = str(refused)
    if failed is not None:
        errors.print(f"[yellow]warning:[/yellow] the ledger could not record that this answer was refused "
                     f"({escape(failed)})")


def _resume_or_record(service: Service, record: RolloutRecord | None, run: Any, answer: dict[str, Any]) -> None:
    """``resume`` the paused ``run`` with ``answer``; one the run no longer takes is recorded
    (``record_refused``) before the refusal is raised.

    Raises:
        ResumeRefused: as ``resume``.
    """
    try:
        resume(run.id, answer, paused=run.state)
    except ResumeRefused as refused:
        record_refused(service, record, run, answer, refused)
        raise


def _answerable(service: Service, record: RolloutRecord | None, run: Any, answer: dict[str, Any]) -> None:
    """Refuse, before anything is sent, to answer a paused run whose process died; it is marked
    Crashed and the person told what to do instead, so the answer is not lost without a word
    (the ledger keeps it too: ``record_refused``).

    Raises:
        Unattended: the run's process died; nothing was sent.
    """
    who, action, comment = answer["approver"], answer["action"], answer["comment"]
    try:
        check_attended(run, record=record)
    except Unattended as dead:
        end_unattended(run, who, action, comment)
        record_refused(service, record, run, answer, dead)
        raise Unattended(f"{dead}. Your answer ({action}) was not sent: a dead run would not act on it, and would "
                         "show Running for ever; a live one stops once it reads its Crashed mark, acting on no answer. "
                         f"{unattended_next(record, run, action)}") from None


@reporting
def promote(
    *,
    approver: str | None,
    comment: str,
    weight: int | None,
    flow_run: UUID | None,
    targets_block: str | None,
    credentials_block: str | None,
) -> int:
    """Approve the paused run of the service's rollout."""
    from flows.env import CANARY_FLOW

    who = who_answers(approver)
    answer = _answer("approve", who, comment, weight)
    service = connect(targets_block, credentials_block)
    record, run = _paused(service, flow_run)
    # Only against the rollout this run drives: a `canary` flow run keeps no ledger, and the
    # ledger's newest rollout is then another one; its own spec and the live weights say instead.
    # Checked before whether the run still waits: that look takes up to half a minute, and a run
    # found silent is marked Crashed with the mistyped weight recorded as a refused approval.
    skipped: list[int] | None = None
    if weight is not None and record is not None and owner_run_id(record) == run.id:
        skipped = check_next_weight(record, weight)
    elif weight is not None and flow_name(run) == CANARY_FLOW:
        skipped = check_canary_weight(run, live_weights(service), weight)
    _answerable(service, record, run, answer)
    _resume_or_record(service, record, run, answer)
    taken, why = answer_seen(service, record, run, who, "approve")
    if taken in NOT_TAKEN:
        raise OpsError(f"flow run {run.name} ({run.id}) did not take {who}'s promote: {why}")
    console.print(f"approved by {who}: flow run {run.name} ({run.id}) resumed{skipping(weight, skipped)}"
                  f"{_not_recorded_yet(taken)}{_asking(run)}", markup=False)
    return 0


@reporting
def hold(
    *,
    approver: str | None,
    comment: str,
    flow_run: UUID | None,
    targets_block: str | None,
    credentials_block: str | None,
) -> int:
    """Answer the paused run "hold": stay at the current weights and ask again, as the form's *hold*."""
    who = who_answers(approver)
    answer = _answer("hold", who, comment)
    service = connect(targets_block, credentials_block)
    record, run = _paused(service, flow_run)
    _answerable(service, record, run, answer)
    _resume_or_record(service, record, run, answer)
    taken, why = answer_seen(service, record, run, who, "hold")
    if taken in NOT_TAKEN:
        raise OpsError(f"flow run {run.name} ({run.id}) did not take {who}'s hold: {why}")
    console.print(f"held by {who}: flow run {run.name} ({run.id}) stays at its weights and asks again after its "
                  f"next analysis interval{_not_recorded_yet(taken)}{_asking(run)}", markup=False)
    return 0


@reporting
def abort(
    *,
    approver: str | None,
    reason: str,
    flow_run: UUID | None,
    wait_seconds: float,
    targets_block: str | None,
    credentials_block: str | None,
) -> int:
    """Roll the service's rollout back: reject its paused run, or roll back directly."""
    check_wait(wait_seconds)
    who = who_answers(approver)
    if not reason.strip():
        # The rollback flow refuses a blank reason too: the page said "aborted by bob: " and nothing else.
        raise UsageError("--reason: say why (it goes in the ledger and the page on-call gets); nothing was done")
    # The rollback flow records and sends the same words when no run is paused: bounded alike.
    answer = _answer("reject", who, reason, comment_option="--reason")
    service = connect(targets_block, credentials_block)
    try:
        record, run = _paused(service, flow_run, "nothing was rolled back")
        check_attended(run, record=record)
    except Unattended as dead:
        # Rejected, nothing would roll back: the rollback is carried out here instead, as when
        # nothing is paused, once the dead run has ended (cancelled, it would never stop: nothing runs it).
        end_unattended(run, who, "reject", reason)
        if record is None or owner_run_id(record) != run.id:
            raise OpsError(f"{dead}; nothing was rolled back by this command. "
                           f"{unattended_next(record, run, 'reject')}") from None
        errors.print(f"[yellow]warning:[/yellow] {escape(str(dead))}; it is marked Crashed, and the rollback is "
                     "carried out here")
        return _abort_directly(service, who, reason, wait_seconds)
    except NoPausedRun as nothing:
        # A block naming what AWS does not know was answered "nothing to abort": the same reads
        # that found the misspelt name were made, and their answer dropped.
        if flow_run is not None or isinstance(nothing, TargetsUnknown):
            raise
        return _abort_directly(service, who, reason, wait_seconds)
    try:
        _resume_or_record(service, record, run, answer)
    except ResumeRefused as refused:
        # Told only that the answer was not taken, on-call was left to work out what to do next.
        raise ResumeRefused(f"{refused}; nothing was rolled back by this command: `rollway status` shows where the "
                            "rollout stands, and `rollway abort` again acts on it as it is now") from None
    taken, why = answer_seen(service, record, run, who, "reject")
    not_taken = f"flow run {run.name} ({run.id}) did not take {who}'s reject: {why}"
    if taken == "ended":
        # It ended on taking the answer (another run drove the rollout meanwhile, say promoted it):
        # nothing rolls back, and "resumed to roll back" left a canary in production unwatched.
        errors.print(f"[red]error:[/red] {escape(not_taken)}; nothing was rolled back by this command: "
                     "`rollway status` shows where the rollout stands")
        say_live(service)
        return 1
    if taken == "rolled back":
        # "rolls back on its own" had on-call wait for a rollback that was already over.
        errors.print(f"[yellow]warning:[/yellow] {escape(not_taken)}: nothing is left for this command to roll back")
        say_live(service)
        return 0
    if taken == "refused":
        # Refused only when the run's own look ended the pause as the answer landed: it rolls
        # back all the same, on its own reason (the ledger and the page give that one, not yours).
        errors.print(f"[yellow]warning:[/yellow] {escape(not_taken)}")
        console.print(f"flow run {run.name} ({run.id}) rolls back on its own", markup=False)
    else:
        console.print(f"rejected by {who}: flow run {run.name} ({run.id}) resumed to roll back"
                      f"{_not_recorded_yet(taken)}", markup=False)
    if wait_seconds <= 0:
        return 0
    # Said before the wait: two minutes of a silent terminal read as a hang.
    console.print(f"waiting up to {seconds_said(wait_seconds)} (--wait-seconds) for flow run {run.name} to finish rolling back "
                  "...", markup=False)
    import httpx

    try:
        finished = wait_for_run(run.id, is_final, timeout_seconds=wait_seconds)
    except (TimeoutError, httpx.HTTPError) as late:
        # The bare timeout (or "cannot reach the Prefect API") left on-call unsure whether the
        # reject was sent or the traffic moved.
        # An API's error quotes the URL it asked, with the password a PREFECT_API_URL may carry.
        lost = (str(late) if isinstance(late, TimeoutError)
                else f"could not follow flow run {run.name} ({run.id}) ({passwords_hidden(str(late))})")
        errors.print(f"[red]error:[/red] {escape(lost)}: the reject was sent: the run goes on rolling back, and "
                     "`rollway status` shows where it stands (this command did nothing else)")
        say_live(service)
        return 1
    console.print(f"flow run {finished.name} is {_state_name(finished)}", markup=False)
    if not finished.state.is_completed() and (finished.state.message or "").strip():
        # Its state's name alone left on-call to open the Prefect UI to learn whether the traffic
        # was back (a later step failed: RollbackIncomplete) or not, which step, and what next.
        errors.print(f"it ended: {escape(finished.state.message.strip())}")
    # The run's outcome is the abort's: weights that cannot be read back are said on their own,
    # not an exit 1 that on-call reads as "the rollback did not happen".
    say_live(service)
    if not finished.state.is_completed() and record is not None:
        _reject_left(service, record.rollout_id, _run_failure(finished))
    return 0 if finished.state.is_completed() else 1


def _run_failure(run: Any) -> BaseException | None:
    """The exception ``run`` ended with, when its result can be read (None otherwise)."""
    try:
        failure = run.state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - stored on the worker's disk, not this host's: the advice is said without it
        return None
    return failure if isinstance(failure, BaseException) else None


def _reject_left(service: Service, rollout: str, failed: BaseException | None) -> None:
    """Say where the rejected run that ended without completing left ``rollout``'s rollback, as the
    ledger records it, and what finishes it. "It ended" with the run's error alone (stable never
    became steady, say) left on-call to work out that the rollback is left open, what it did, and
    that `rollway abort` again, or the rollback flow with a longer wait, finishes it."""
    from rollway.ledger import ROLLBACK_STOPPED, rollback_stopped_steps

    try:
        record = ledger_read(service, lambda ledger: ledger.get(service.name))
    except Exception as err:  # noqa: BLE001 - a report: say what is not known
        errors.print(f"the ledger could not be read ({err}): `rollway status` shows where rollout {rollout} stands, "
                     "and `rollway abort` again rolls it back (or finishes its rollback)", markup=False)
        return
    if record is None or record.rollout_id != rollout:
        errors.print(f"the ledger no longer shows rollout {rollout} as {service.name}'s newest: `rollway status` shows "
                     "where it stands", markup=False)
        return
    if record.phase is RolloutPhase.ROLLED_BACK:
        # Not "the error above names the step left to do": a run fails after recording its rollback
        # done for reasons no rollback step has, and the run's error may not be readable here.
        errors.print(f"the ledger records rollout {rollout} as rolled back: the traffic is back on "
                     f"{service.targets.stable_service}, and no rollback is left open", markup=False)
        return
    if record.phase is not RolloutPhase.ROLLING_BACK:
        errors.print(f"the ledger still records rollout {rollout} as {record.phase.value} at {record.weights} "
                     "(stable/canary): its rollback did not begin. Run `rollway abort` again: it rolls it back.",
                     markup=False)
        return
    start = rollback_start(record)
    stopped = [t for t in record.history if t.kind == ROLLBACK_STOPPED and (start is None or t.at >= start.at)]
    steps = ""
    if stopped:
        done, not_done = rollback_stopped_steps(stopped[-1])
        steps = f" (done: {done}; not done: {not_done})"
    errors.print(f"the ledger records rollout {rollout} as rolling back{steps}. "
                 f"{_finish_rejected(failed, service, rollout, stopped[-1] if stopped else None)}", markup=False)


def _finish_rejected(failed: BaseException | None, service: Service, rollout: str, stopped: Transition | None) -> str:
    """What finishes the rollback of ``rollout`` a rejected run left open (``failed``: its error,
    None when not known; ``stopped``: its ``rollback-stopped`` entry, if recorded): a step after the
    traffic's move (RollbackIncomplete) is not the stable service failing to take the traffic, which
    waiting for it would not fix.

    The error is read from where the run's worker stored it, which a command run on another host
    (on-call's laptop) cannot read: the entry's read-back of the weights says the move all the same."""
    from flows.rollback import RollbackIncomplete

    back = stopped is not None and stopped.to_weights is not None and stopped.to_weights.canary == 0
    if not isinstance(failed, RollbackIncomplete) and not back:
        return _finish_after(failed, service, rollout)
    said = f"The traffic is back on {service.targets.stable_service}; every step but those that failed was done. "
    if isinstance(failed, RollbackIncomplete) and failed.how:
        return f"{said}To finish: {failed.how}."
    # Without the error, what else it names to do first (a revision to restore by hand) is only in it.
    unread = "" if isinstance(failed, RollbackIncomplete) else " (unless the run's error above names a step to do first)"
    return (f"{said}Run `rollway abort` again once the failed step can succeed: it finishes the rollback from the "
            f"ledger{unread}.")


def say_live(service: Service) -> Weights | None:
    """Print the split the load balancer holds now, read back (None, said, when it cannot be read)."""
    try:
        live = live_weights(service)
    except Exception as err:  # noqa: BLE001 - a report, not a step: say what is not known
        from rollway.aws.errors import quoted

        # AWS's and botocore's words on one line, escaped, as an error's are (a ParamValidationError is several lines).
        errors.print(f"[yellow]warning:[/yellow] could not read the load balancer back ({escape(quoted(err))}); "
                     "`rollway status` shows it")
        return None
    console.print(f"load balancer now {live} (stable/canary), read back", markup=False)
    return live


def rollout_clock(owner: UUID | None) -> ClockSettings:
    """The clock a rollout's ledger entries are stamped on: the ``clock`` parameter of the flow run
    that owns it (`rollway up` serves the flows on a sped-up clock), or real time when no flow run
    owns it (released between weekly phases, say) or the API no longer has it.

    An API that cannot be reached does not stop the abort here: its intent is recorded all the
    same (on real time, with a warning), as it was before the clock was asked for.
    """
    import httpx

    from flows.approvals import bounded_client

    if owner is None:
        return ClockSettings()
    try:
        with bounded_client() as client:
            run = read_run(client, owner)
    except httpx.HTTPError as err:
        # An API's error quotes the URL it asked, with the password a PREFECT_API_URL may carry.
        errors.print(f"[yellow]warning:[/yellow] could not read the rollout's clock from flow run {owner} "
                     f"({escape(passwords_hidden(str(err)))}); stamping the abort on real time")
        return ClockSettings()
    clock = _clock_of(run) if run else None
    return clock if clock is not None else ClockSettings()


def _clock_of(run: Any) -> ClockSettings | None:
    """The clock a flow run ran on, from its stored ``clock`` parameter, read as the run read it
    (``of_run``); None when it did not validate: such a run never started, nor stamped anything."""
    from pydantic import ValidationError

    try:
        return ClockSettings.of_run((run.parameters or {}).get("clock"))
    except ValidationError:
        return None


def abort_clock(record: RolloutRecord) -> ClockSettings:
    """The clock `rollway abort` stamps ``record``'s entries on and runs its rollback flow on: its
    owning run's (``rollout_clock``), or, when no flow run owns it (a weekly rollout between
    phases, a promotion whose window is owed), the clock its runs ran on (``recorded_clock``).
    Real time there put the abort's entries under `rollway up`'s 60x clock hours before the run's
    last ones: `rollway status` listed the rollback before the shift it undid. An API that cannot
    be reached stamps them on real time, with a warning, as for an owning run's clock."""
    import httpx

    from flows.approvals import bounded_client

    owner = owner_run_id(record)
    if owner is not None:
        return rollout_clock(owner)
    try:
        return recorded_clock(record, bounded_client)
    except httpx.HTTPError as err:
        # An API's error quotes the URL it asked, with the password a PREFECT_API_URL may carry.
        errors.print(f"[yellow]warning:[/yellow] could not read the clock rollout {record.rollout_id}'s runs ran on "
                     f"({escape(passwords_hidden(str(err)))}); stamping the abort on real time")
        return ClockSettings()


def recorded_clock(record: RolloutRecord | None, connect: Callable[[], Any] | None = None) -> ClockSettings:
    """The clock ``record``'s rollout was run on: the ``clock`` parameter of the newest flow run
    tagged with the rollout (every run that held it is), else of its owner, else real time.
    ``connect``: what makes the Prefect client asked (None: Prefect's own).

    A promoted rollout has no owner once its window is watched, so ``rollout_clock`` alone said
    real time: under `rollway up`'s 60x clock, `rollway finalize` then stamped its entries hours
    before the promotion they follow, and judged the monitoring window on the wrong clock.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas import filters
    from prefect.client.schemas.sorting import FlowRunSort

    from rollway.rollout_tags import rollout_tag

    if record is None:
        return ClockSettings()
    with (connect() if connect is not None else get_client(sync_client=True)) as client:
        runs = client.read_flow_runs(
            flow_run_filter=filters.FlowRunFilter(tags=filters.FlowRunFilterTags(all_=[rollout_tag(record.rollout_id)])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1,
        )
    clock = _clock_of(runs[0]) if runs else None
    return clock if clock is not None else rollout_clock(owner_run_id(record))


def _abort_directly(service: Service, who: str, reason: str, wait_seconds: float) -> int:
    """No run waits for an answer: roll back here, saying so when another rollback ended it first."""
    try:
        return _rollback_directly(service, who, reason, wait_seconds)
    except RolloutClosed as closed:
        # Another rollback ended the rollout first: who and when are the ledger's words; where
        # the traffic is now is the load balancer's (a shift may have landed after it).
        errors.print(f"[red]error:[/red] {escape(str(closed))}")
        say_live(service)
        return 1


def _prefect_error_behind(err: BaseException) -> Exception | None:
    """The Prefect API's error ``err`` is, or was raised from; None when it is none.

    Prefect's flow engine says an API gone as a flow starts as a RuntimeError ("Failed to reach API
    at ...") raised from the connection's error: taken for a failed rollback step, the abort told
    on-call to wait for the stable service, which had nothing to do with it. An ``ApiError`` is one
    too: it stands for the httpx error it is raised instead of (``rollway.api_error``)."""
    import httpx

    from rollway.api_error import ApiError

    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, (httpx.HTTPError, ApiError)):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__  # raised from: not an error merely handled on the way (__context__)
    return None


def _rollback_left_open(service: Service, rollout: str, owner: UUID | None, unstopped: str | None) -> None:
    """Say where an abort whose rollback flow could not reach the Prefect API left ``rollout``: what
    the ledger records (read again: the flow may have got part-way) and the split the load balancer
    holds, read back, and that the same command finishes it once the API answers (the ledger keeps
    the rollback open, and the next abort carries it out from there). Last, from the same read, an
    owning run ``owner`` left running (``_say_unfenced``)."""
    name = service.name
    unfenced: str | None = None  # what the record just read says of the owning run's fence
    try:
        record = ledger_read(service, lambda ledger: ledger.get(name))
    except Exception as err:  # noqa: BLE001 - a report: say what is not known
        recorded = f"the ledger could not be read ({err})"
        unfenced = "the ledger could not be read to tell whether it ends it"
    else:
        if record is None or record.rollout_id != rollout:
            # Another rollout began since: the next abort would act on that one.
            errors.print(f"The rollback flow did not run to its end, and the ledger no longer shows rollout {rollout} "
                         f"as {name}'s newest: `rollway status` shows where it stands.", markup=False)
            say_live(service)
            return
        if record.phase is RolloutPhase.ROLLED_BACK:
            # Its flow recorded the end, and only its own last word to the API was lost.
            errors.print(f"the ledger records rollout {rollout} as rolled back: nothing is left to roll back",
                         markup=False)
            say_live(service)
            return
        if record.phase is RolloutPhase.ROLLING_BACK:
            recorded = f"the ledger records rollout {rollout} as rolling back, not finished"
        else:
            recorded = (f"the ledger still records rollout {rollout} as {record.phase.value} at {record.weights} "
                        "(stable/canary): the abort is not recorded")
            unfenced = "the ledger does not end it"
    errors.print(f"The rollback flow did not run to its end: {recorded}. Run `rollway abort` again once the Prefect "
                 "API answers: it finishes the rollback from the ledger.", markup=False)
    say_live(service)
    if owner is not None and unstopped is not None and unfenced is not None:
        errors.print(_unfenced(owner, rollout, unstopped, unfenced), markup=False)


def _finish_after(failed: BaseException | None, service: Service, rollout: str) -> str:
    """What finishes the rollback of ``rollout`` that `rollway abort` ran and ``failed`` stopped.

    A wait for the stable service that ran out says to raise the rollout spec's wait "or the rollback
    flow's": the spec is recorded, and `rollway abort` has no option for either, so on-call was told
    to change what the command they ran cannot pass. Said instead: run it again once the service is
    ready, or run the rollback flow with the longer wait. Any other failure is said as the rollback's
    page says it (``when_again``): a rule or a permission refused is not put right by waiting for the
    stable service, which "once <stable> can take the traffic" told on-call to do."""
    from flows.engine import TooFewHealthyTargets
    from flows.rollback import when_again
    from rollway.aws.errors import ServiceNotStable

    stable = service.targets.stable_service
    if isinstance(failed, ServiceNotStable) and failed.timed_out:
        setting, ready, waited = "scale_timeout_seconds", f"{stable}'s tasks are steady", failed.timeout_seconds
    elif isinstance(failed, TooFewHealthyTargets) and failed.healthy == 0:
        setting, ready, waited = "healthy_timeout_seconds", f"{stable}'s targets pass their health checks", None
    else:
        return (f"It is not recorded as finished (the rollback flow's log says what was done): "
                f"{when_again(failed, stable, 'run `rollway abort` again')}")
    # The figure as given: :g wrote 100.0001 s as "100", "more than" less than it had, and 1234567 s
    # as "1.23457e+06".
    seconds = f"<seconds, more than {as_given(waited)}>" if waited else "<seconds>"
    # The whole command: the flow refuses a run without a reason, which a bare deployment name left out.
    deployment = deployment_path("rollback")
    return (f"It is not recorded as finished. `rollway abort` waits as long as the rollout's spec says and cannot be "
            f"given longer: run it again once {ready} (it finishes the rollback from the ledger), or run the rollback "
            f"flow with a longer {setting}: `prefect deployment run {deployment} --param reason=\"<why>\" --param "
            f"actor=<you> --param rollout={rollout} --param {setting}={seconds}`, or its form in the Prefect UI "
            f"(Deployments -> {deployment} -> Run) with those.")


def _history_for(service: Service, record: RolloutRecord | None) -> list[RolloutRecord]:
    """The service's rollouts, newest first, when a refusal of ``record`` names the version before
    it (a promoted one); empty otherwise, or when they cannot be read: a refusal is not failed on it."""
    if record is None or record.phase is not RolloutPhase.PROMOTED:
        return []
    try:
        return ledger_read(service, lambda ledger: ledger.history(service.name, unreadable={}))
    except Exception:  # noqa: BLE001 - the refusal still says what to do, without the image
        return []


def _live_or_none(service: Service) -> Weights | None:
    """The split the load balancer holds, for a refusal that says what to do about it; None when it
    cannot be read (the refusal is not failed on it)."""
    try:
        return live_weights(service)
    except Exception:  # noqa: BLE001 - the refusal is said without it
        return None


def _services_or_none(service: Service, record: RolloutRecord | None) -> tuple[ServiceState, ServiceState] | None:
    """The stable and canary services, for a refusal of a promotion closed to `rollway abort` that
    says what a rollback by hand would do (``reverted_by_hand``); None when that does not depend on
    them, or they cannot be read (the refusal is not failed on it)."""
    from rollway.finalize import reversible_by_hand

    if service.deployer is None or not reversible_by_hand(record):
        return None
    try:
        return service.deployer.describe(service.targets.stable_service), service.deployer.describe(service.name)
    except Exception:  # noqa: BLE001 - the refusal says what the rollback flow checks instead
        return None


def _stop_owner(owner: UUID, who: str, wait_seconds: float) -> str | None:
    """Cancel the flow run that owns the rollout, if it still runs, and wait for it to stop.

    Returns what is known of a run the Prefect API could not be asked about (said as a warning, and
    in ``_unfenced`` words): cancelled or not; None when it stopped, had ended, or its wait ran out.
    """
    import httpx
    from prefect.states import Cancelling

    from flows.approvals import bounded_client

    # At least a second even under --wait-seconds 0: a run cancelled at once has stopped by then.
    stop_within = max(wait_seconds, 1.0)
    sent = False
    try:
        with bounded_client() as client:
            run = read_run(client, owner)
            if run is not None and not is_final(run):
                # A running rollout would shift traffic again after the rollback: stop it first.
                client.set_flow_run_state(owner, Cancelling(message=f"aborted by {who}"), force=True)
                sent = True
                console.print(f"cancelling flow run {run.name} ({owner}), which owns the rollout, and waiting up to "
                              f"{seconds_said(stop_within)} (--wait-seconds) for it to stop before rolling back ...",
                              markup=False)
        if sent:
            try:
                wait_for_run(owner, is_final, timeout_seconds=stop_within)
            except TimeoutError as err:
                # A run whose process died never finishes cancelling; the rollback must not wait on it.
                errors.print(f"[yellow]warning:[/yellow] {err}; rolling back anyway")
    except httpx.HTTPError as err:
        # An API's error quotes its URL, with the password a PREFECT_API_URL may carry.
        why = passwords_hidden(str(err))
        # The abort is recorded ("rolling back"): an API that dropped since left the ledger saying
        # so, the traffic on the canary and exit 1. The traffic comes first, as for the ledger.
        # A cancel sent before the API dropped is not one that failed: only its effect is unknown.
        lead = (f"flow run {owner}, which owns the rollout, was sent its cancel, but it could not be seen to stop"
                if sent else f"could not stop flow run {owner}, which owns the rollout")
        errors.print(f"[yellow]warning:[/yellow] {lead} ({escape(why)}); rolling back anyway: `rollway status` shows "
                     "whether it still runs")
        return (f"may not have stopped (its cancel was sent, then the Prefect API failed before it was seen to stop: "
                f"{why})" if sent else f"was not stopped (its cancel failed: {why})")
    return None


def _unfenced(owner: UUID, rollout: str, unstopped: str, ledger: str = "the ledger does not end it") -> str:
    """What `rollway abort` says when the run that owns ``rollout`` goes on after its rollback: it
    was not stopped, or not seen to (``unstopped``, from ``_stop_owner``), and the ledger does not
    say "rolling back", which would end it."""
    return (f"Flow run {owner}, which owns rollout {rollout}, {unstopped} and "
            f"{ledger}: it may shift traffic to the canary again at its next stage. Cancel it as soon "
            f"as the Prefect API answers (`prefect flow-run cancel {owner}`, or the Prefect UI), then run "
            "`rollway abort` again.")


def _say_unfenced(service: Service, owner: UUID | None, rollout: str, unstopped: str | None) -> None:
    """Last, after a rollback by `rollway abort` that did not finish: when the run that owns
    ``rollout`` was not cancelled (``unstopped``: why) and the ledger, read again (the rollback flow
    may have recorded its start since), does not say "rolling back" or "rolled back", which end it
    at its next write, say that run may move the traffic again and how to stop it. The advice to
    run the command again alone left it shifting traffic to the canary meanwhile."""
    if owner is None or unstopped is None:
        return
    try:
        record = ledger_read(service, lambda ledger: ledger.get(service.name))
    except Exception:  # noqa: BLE001 - a warning: said without knowing the ledger's word
        errors.print(_unfenced(owner, rollout, unstopped, "the ledger could not be read to tell whether it ends it"),
                     markup=False)
        return
    if record is None or record.rollout_id != rollout or record.phase in (RolloutPhase.ROLLING_BACK,
                                                                          RolloutPhase.ROLLED_BACK):
        return  # the run's next write is refused: another rollout is the newest, or its rollback is recorded
    errors.print(_unfenced(owner, rollout, unstopped), markup=False)


def _rollback_directly(service: Service, who: str, reason: str, wait_seconds: float) -> int:
    """No run waits for an answer: stop the run that owns the rollout, then roll back here."""
    from flows.rollback import RollbackIncomplete, RollbackRefused, rollback
    from rollway.aws.ledger import write_or_why
    from rollway.cli.prefect_console import failed_steps_held, task_completions_unsaid
    from rollway.cli.way_back import nothing_to_abort
    from rollway.ledger import (LedgerError, RollbackUnrecorded, RolloutSuperseded, begin_rollback,
                                open_for_rollback)
    from rollway.spec import RolloutSpec

    record = ledger_read(service, lambda ledger: ledger.get(service.name), "nothing was rolled back")
    # A promoted rollout whose monitoring window is owed can still be aborted: the old service runs.
    if record is None or not open_for_rollback(RolloutSpec.for_rollback(record.spec_json), record):
        raise NoRollout(nothing_to_abort(service.targets, record, _history_for(service, record), _live_or_none(service),
                                         _services_or_none(service, record)))
    why = f"aborted by {who}: {reason}"
    owner = owner_run_id(record)
    # The abort's entries go in the rollout's history among its run's: on that run's clock (sped
    # up under `rollway up`), the intent below and the rollback flow's own alike.
    clock = abort_clock(record)
    record_unheard(service, record, clock.build().now())
    if record.phase is not RolloutPhase.ROLLING_BACK:
        # Intent first, in the person's words: from here the owning run can no longer record
        # progress (RolloutEnded), and whichever rollback finishes (this one or the cancelled
        # run's hook) finishes this one.
        try:
            unrecorded = write_or_why(lambda: begin_rollback(service.ledger, service.name, actor=who, reason=why,
                                                             now=clock.build().now(), rollout=record.rollout_id,
                                                             wall=time.time()))
        except RolloutSuperseded as superseded:
            raise _moved_on(record, superseded) from superseded
        if unrecorded is not None:
            # The traffic comes first: roll back anyway; the rollback flow tries to record it again.
            errors.print(f"[yellow]warning:[/yellow] the ledger could not record the abort ({escape(unrecorded)}); "
                         "rolling back anyway")
    # Why the owning run may still run: not cancelled, or not seen to stop (the API dropped).
    unstopped = _stop_owner(owner, who, wait_seconds) if owner is not None else None
    spec = RolloutSpec.for_rollback(record.spec_json)
    try:
        # rollout=: the rollback acts only while this rollout is the newest. While this command
        # waited for the owning run to stop, that run's hook may have finished this rollback and
        # someone may have started the next rollout, which nobody aborted.
        # Each answer below is said in a few lines: the engine's traceback above them read as a crash.
        # Prefect's line for each task that completed is left off the terminal, as `rollway finalize`
        # leaves it: one for every read and write, between the flow's own lines saying each step.
        # A task that fails is said by the flow (its failed steps, AWS's words in each, or its own
        # error): the task engine's ERROR line and traceback of it stood above the command's lines,
        # and so did the flow's own line of each step that failed, which the list below says again.
        with without_traceback(RolloutSuperseded, RollbackRefused, RollbackIncomplete, RollbackUnrecorded,
                               task_failures=(Exception,)), \
                task_completions_unsaid(), failed_steps_held(RollbackIncomplete):
            result = rollback(
                reason=why, actor=who, previous_task_definition=record.previous_task_definition,
                stable_desired=record.stable_desired, bindings=list(spec.flags) or None,
                targets_block=service.targets_block, aws_credentials_block=service.credentials_block,
                clock=clock, rollout=record.rollout_id,
            )
    except RolloutSuperseded as superseded:
        raise _moved_on(record, superseded) from superseded
    except RollbackUnrecorded as unrecorded_rollback:
        # Rolled back, not recorded: what happened, one fact a line, and a failing exit code.
        errors.print(f"[red]error:[/red] rolled back {service.name}, but the ledger does not say so")
        for fact in unrecorded_rollback.facts:
            errors.print(fact, markup=False)  # AWS's words may hold brackets rich would read as markup
        # Neither fence may hold: "fix the ledger" alone left the owning run shifting traffic to the
        # canary again while on-call believed the rollback stood.
        _say_unfenced(service, owner, record.rollout_id, unstopped)
        return 1
    except RollbackIncomplete as incomplete:
        # The traffic moved; a later step did not. The ledger keeps the rollback open, so the
        # same command finishes it.
        errors.print(f"[red]error:[/red] the traffic is back on {service.targets.stable_service}, but the rollback "
                      "did not finish:")
        for step in incomplete.failed_steps:
            errors.print(f"  {step}", markup=False)
        # ``how``: running this command again cannot finish it (it restores the recorded revision).
        errors.print(f"Every other step was done. To finish: {incomplete.how}." if incomplete.how else
                     "Every other step was done. Run `rollway abort` again once the failed step can succeed.",
                     markup=False)
        _say_unfenced(service, owner, record.rollout_id, unstopped)
        return 1
    except RollbackRefused as refused:
        errors.print(f"[red]error:[/red] {escape(str(refused))}")
        _say_unfenced(service, owner, record.rollout_id, unstopped)
        return 1
    except (LedgerError, OpsError, TimeoutError):
        # The ledger's refusals say what happened: `reporting` prints them.
        raise
    except Exception as failed:  # noqa: BLE001 - a step that failed is said in words, not a traceback
        if (unreachable := _prefect_error_behind(failed)) is not None:
            # The rollback is a Prefect flow: without the API it did not start, or stopped part-way.
            # "cannot reach the Prefect API" alone left on-call to guess whether anything moved.
            errors.print(f"[red]error:[/red] {escape(api_unreachable(unreachable))}")
            _rollback_left_open(service, record.rollout_id, owner, unstopped)
            return 1
        # The stable service did not come up, the load balancer refused, ...: the rollback
        # flow's log and page say what it did; the rollback stays open, and this command finishes it.
        errors.print(f"[red]error:[/red] the rollback of {service.name} failed: {escape(str(failed))}")
        errors.print(_finish_after(failed, service, record.rollout_id), markup=False)
        _say_unfenced(service, owner, record.rollout_id, unstopped)
        return 1
    # The rollback flow records the abort (intent, then completion) with lease-free writes,
    # unless the cancelled run's own rollback hook finished it first.
    if result.done_by is not None:
        # The cancelled run's hook (or another rollback) held the rollback: this command waited
        # for it and did nothing again, so people were paged once. Its steps are its ledger entry;
        # where the traffic is now is read from the load balancer (a shift may have landed since).
        console.print(f"rolled back {service.name} by {result.done_by} while this command waited: "
                      + "; ".join(result.steps), markup=False)
        live = say_live(service)
        if live is not None and live.canary:
            errors.print(f"[red]error:[/red] the load balancer sends {live.canary}% of the traffic to "
                         f"{service.targets.canary_service} after that rollback ended: `rollway status` shows who "
                         "drives it; the rollback flow (the rollback deployment) moves it back")
            return 1
        return 0
    console.print(f"rolled back {service.name}: load balancer {result.weights} (stable/canary), "
                  f"{service.targets.canary_service} at {result.canary_desired} tasks", markup=False)
    # The person who aborted reads this, not the page: a flag left on still serves the feature.
    if result.flags_disabled:
        console.print(f"feature flags turned off: {', '.join(result.flags_disabled)}", markup=False)
    for line in result.flags_kept:
        console.print(f"feature flag LEFT ON, as a person set it: {line}", markup=False)
    for line in result.flags_held:
        console.print(f"feature flag LEFT AS IT IS, another rollout holds it: {line}", markup=False)
    return 0

