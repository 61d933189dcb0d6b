"""``rollway finalize``: after a promotion, move the promoted version onto the stable service.

Runs the ``finalize`` flow in this process (as ``rollway abort`` runs the rollback flow), on the
same blocks as the other commands, and prints each step it took. Options are checked before
any block is loaded or AWS called. Imports stay inside the function, so that ``rollway
--help`` does not pay for Prefect.
"""

from __future__ import annotations

from typing import Any, Callable

from rollway.cli.blocks import CREDENTIALS_BLOCK, TARGETS_BLOCK


def finalize(*, actor: str | None = None, stable_timeout_seconds: float = 600.0, healthy_timeout_seconds: float = 300.0,
             verify_timeout_seconds: float = 30.0, unrecorded: bool = False, accept_breach: str | None = None,
             targets_block: str | None = TARGETS_BLOCK, credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """After a promotion: put the promoted version on the stable service, move the traffic back to it
    and scale the canary to 0, so the next rollout can start (idempotent; run it again after a failure).

    Args:
        actor: who finalizes, recorded in the ledger (default: your user name).
        stable_timeout_seconds: how long the stable service may take to become steady on the promoted version.
        healthy_timeout_seconds: how long its targets may then take to pass the load balancer's health checks.
        verify_timeout_seconds: how long the load balancer may take to show the traffic moved, read back; also how long
            each of the first reads (the load balancer, the services, the `canary` flow's runs) may take.
        unrecorded: finalize a promotion the ledger does not record, made by the `canary` flow (which keeps no
            ledger): refused unless the canary carries all the traffic, the ledger's newest rollout is closed and no
            `canary` flow run is still going; nothing is written to the ledger.
        accept_breach: why you keep a release whose monitoring window saw a breach it could not roll back (finalize
            refuses it otherwise): you judged the breach harmless. Recorded in the ledger with your name and the
            breach's time; refused where no such breach stands.
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.cli.ops import reporting

    return reporting(_finalize)(actor=actor, stable_timeout_seconds=stable_timeout_seconds,
                                healthy_timeout_seconds=healthy_timeout_seconds,
                                verify_timeout_seconds=verify_timeout_seconds, unrecorded=unrecorded,
                                accept_breach=accept_breach, targets_block=targets_block,
                                credentials_block=credentials_block)


def checked_actor(actor: str | None) -> str:
    """The name finalize records: ``--actor`` without surrounding spaces, or the OS user when omitted.

    Raises:
        UsageError: ``--actor`` is blank or longer than the ledger keeps, or omitted where the OS
            user has no name.
    """
    import getpass

    from flows.params import Actor
    from rollway.cli.ops import UsageError

    if actor is None:
        try:
            return getpass.getuser()
        except (OSError, KeyError, ImportError) as err:
            # A container's uid may have no passwd entry and no USER/LOGNAME: say so, not a traceback.
            raise UsageError(f"cannot tell who you are ({err}): pass --actor to name who finalizes") from None
    return _as_the_flow_takes(Actor, actor, lambda why: f"--actor {actor!r}: {why}; or leave --actor out to finalize "
                                                        "as your user name")


def checked_acceptance(accept_breach: str | None, unrecorded: bool) -> str | None:
    """``--accept-breach`` as the flow takes it (``BreachAcceptance``: without surrounding spaces), or None.

    Raises:
        UsageError: it is blank, longer than the ledger keeps, or given with ``--unrecorded``.
    """
    from flows.params import BreachAcceptance
    from rollway.cli.ops import UsageError
    from rollway.finalize import UNRECORDED_ACCEPT

    if accept_breach is not None and unrecorded:
        raise UsageError(UNRECORDED_ACCEPT)
    return _as_the_flow_takes(BreachAcceptance, accept_breach, lambda why: why)


def _as_the_flow_takes(kind: Any, value: Any, refused: Callable[[str], str]) -> Any:
    """``value`` checked as the finalize flow checks its parameter of type ``kind``, so that the
    command refuses what the flow would, before anything is read.

    Raises:
        UsageError: ``refused`` applied to the checks' own words, joined.
    """
    from pydantic import TypeAdapter, ValidationError

    from rollway.cli.ops import UsageError

    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as err:
        raise UsageError(refused("; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors()))) from None


def _finalize(*, actor: str | None, stable_timeout_seconds: float, healthy_timeout_seconds: float,
              verify_timeout_seconds: float, unrecorded: bool, accept_breach: str | None, targets_block: str | None,
              credentials_block: str | None) -> int:
    import math

    from rich.markup import escape

    from rollway.bounds import as_given
    from rollway.cli.ops import UsageError, connect, console, errors, ledger_read, recorded_clock, without_traceback
    from rollway.cli.prefect_console import task_completions_unsaid

    who = checked_actor(actor)
    accepting = checked_acceptance(accept_breach, unrecorded)
    from flows.params import MAX_WAIT_SECONDS

    # A wait that ran out of time says to run again with more: each wait can be given it here.
    for option, seconds in (("--stable-timeout-seconds", stable_timeout_seconds),
                            ("--healthy-timeout-seconds", healthy_timeout_seconds),
                            ("--verify-timeout-seconds", verify_timeout_seconds)):
        if not (math.isfinite(seconds) and 0 < seconds <= MAX_WAIT_SECONDS):
            raise UsageError(f"{option} {as_given(seconds)}: must be a positive number of seconds, at most "
                             f"{MAX_WAIT_SECONDS:g} (a day)")
    # A missing or stale block is an OpsError naming the API, before a flow run is created.
    service = connect(targets_block, credentials_block)
    # The ledger's entries and the monitoring window are on the rollout's clock (`rollway up`
    # runs its flows at 60x), as the served finalize deployment's are.
    # Read within the commands' bound: a DynamoDB that stopped answering held the command minutes, silent.
    clock = recorded_clock(ledger_read(service, lambda ledger: ledger.get(service.name), "nothing was finalized"))

    from flows.finalize import finalize as finalize_flow
    from rollway.finalize import FinalizeIncomplete, FinalizeNoticeRefused, FinalizeRefused
    from rollway.image import with_pin
    from rollway.one_line import shown

    try:
        # A finalize that stopped is an answer as well: its message says what users are served,
        # quotes the failed step's error and says to run it again (every step's failure becomes one).
        # Prefect's line for each task that completed is left off the terminal, as the demo leaves it:
        # one for every read and write, between the flow's own lines saying each step and each wait.
        with without_traceback(FinalizeRefused, FinalizeIncomplete, FinalizeNoticeRefused, task_failures=(Exception,)), \
                task_completions_unsaid():
            result = finalize_flow(actor=who, targets_block=targets_block, aws_credentials_block=credentials_block,
                                   stable_timeout_seconds=stable_timeout_seconds,
                                   healthy_timeout_seconds=healthy_timeout_seconds,
                                   verify_timeout_seconds=verify_timeout_seconds, unrecorded=unrecorded, clock=clock,
                                   accept_breach=accepting)
    except (FinalizeRefused, FinalizeIncomplete, FinalizeNoticeRefused) as err:
        # AWS's words in the message may hold brackets that rich would read as markup. A refusal
        # opens "error:" as every other command's does (it opened "refused:"). It quotes the
        # ledger's names (who holds the lease, who began a finalize) as typed: shown escaped, as
        # `rollway status` shows them, never as an escape sequence acting on the terminal, nor as
        # a line break that begins a line of the command's own.
        errors.print(f"[red]error:[/red] {escape(shown(str(err), keep=''))}")
        return 1
    # A run that found nothing to do took one step, this finding: said once, as the closing line,
    # with what AWS showed (printed as a step too, it was said twice).
    if result.outcome == "nothing_to_finalize":
        # The run's one step is what AWS showed (the canary's revision, and the stable service's
        # when it is a copy of it), as its log and summary say it.
        console.print(f"{shown(result.steps[-1], keep='')} (a finalized promotion, a rolled-back one or none look the same to AWS); "
                      "nothing changed", markup=False)
        return 0
    what = result.rollout_id or "the promotion the ledger does not record"
    if result.outcome == "already_finalized":
        # The run's one step is the finding (when it was finalized, what the services run), as its
        # log and summary say it: printed once, as the closing line. It names who finalized, as
        # the ledger keeps it.
        console.print(shown(result.steps[-1], keep=""), markup=False)
        return 0
    for number, step in enumerate(result.steps, start=1):
        console.print(f"{number}. {shown(step, keep='')}", markup=False)
    version = with_pin(result.image, result.pinned_image) if result.image else result.task_definition
    console.print(f"finalized {what}: {version} runs on the stable service, which "
                  f"carries {result.weights.stable}% of the traffic; the next rollout can start", markup=False)
    return 0
