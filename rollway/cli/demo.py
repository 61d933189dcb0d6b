"""``rollway demo``: the canary and rollback flows, end to end, on the embedded AWS.

Scenario A ships a healthy version through 5 -> 25 -> 50 -> 100%; scenario B ships one that
fails 5% of its requests and must be rolled back at 5%; scenario C ships one that fails 0.5%,
under the 1% guardrail, which only the comparison with the baseline rolls back. Each scenario gets a freshly
provisioned account, a traffic simulator on a scaled clock, and runs the real ``canary`` flow
on Prefect (the ephemeral API), which reaches the embedded AWS through a saved AwsCredentials
block exactly as it would reach a real account.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from rich.console import Console, ConsoleDimensions
from rich.table import Table

from rollway.cli.prefect_console import task_completions_unsaid
from rollway.clock import ClockSettings
from rollway.failure_words import error_said
from rollway.judge.guardrails import GUARDRAIL, asked_by
from rollway.model import ServiceState, Weights
from rollway.report import RolloutResult, console_table
from rollway.spec import Analysis, Approvals, RolloutSpec, Stage
from rollway.targets import Targets

if TYPE_CHECKING:
    from rollway.sim.traffic import TickRecord

NOT_A_TERMINAL_WIDTH = 200
"""Columns of the demo's tables written to a file or a pipe (a log, CI) when COLUMNS is not set:
the stage table's fourteen columns, each header whole (at 100 they broke into three-letter pieces)."""


class _FittingConsole(Console):
    """A console whose lines fit where they are read: a terminal's own width (measured at each
    line, so a resized window is followed), COLUMNS when set, else ``NOT_A_TERMINAL_WIDTH`` for tables
    and lines of text left whole.

    A fixed 200 columns broke every long line of an 80-column terminal where the terminal did,
    in the middle of words and table rows; rich alone measures the terminal on stdin even when
    the output goes to a file, or says 80 with no terminal at all."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        if options.get("width") is None:
            # rich fixes COLUMNS at construction, which is the module's import: read at each line.
            self._width = None

    @property
    def size(self) -> ConsoleDimensions:
        measured = Console.size.fget(self)
        if self._width is None and not self.is_terminal and not (self._environ.get("COLUMNS") or "").isdigit():
            return ConsoleDimensions(NOT_A_TERMINAL_WIDTH, measured.height)
        return measured

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)

    def print(self, *objects: Any, soft_wrap: bool | None = None, **options: Any) -> None:
        # A line of text in a file or a pipe is left whole (tables are still drawn to the width):
        # a log is searched, and a message or a URL broken at a column was found
        # by no search for it. A terminal's lines are wrapped at its width, at the words.
        # COLUMNS only sizes the tables there (pytest-xdist, for one, exports COLUMNS=80 to its children).
        if soft_wrap is None and all(isinstance(o, str) for o in objects) and not self.is_terminal:
            soft_wrap = True
        super().print(*objects, soft_wrap=soft_wrap, **options)


console = _FittingConsole(highlight=False)

# Its own block: `make up` saves rollway-embedded in the same Prefect home, pointing at its own
# moto server, and a demo must not repoint it at the demo's (soon gone) one.
DEMO_CREDENTIALS_BLOCK = "rollway-demo-embedded"


@dataclass(frozen=True)
class Scenario:
    name: str
    tag: str
    error_probability: float
    expect: str  # "promoted" or "rolled_back" (at the first stage)
    by_judge: bool = False  # the rollback must be the judge's, not the fixed 1 % guardrail's


DEMO_WEIGHTS = (5, 25, 50, 100)
"""The canary's share of the traffic at each stage of every scenario (demo_spec)."""

SCENARIOS = (
    Scenario(f"A: healthy version, {' -> '.join(map(str, DEMO_WEIGHTS))}%", "2.0.0", 0.001, "promoted"),
    Scenario("B: version failing 5% of requests", "2.1.0", 0.05, "rolled_back"),
    # Five times the baseline's errors, under the seed's 1 % threshold: only the comparison
    # with the baseline catches it.
    Scenario("C: version failing 0.5% of requests (under the 1% guardrail)", "2.2.0", 0.005, "rolled_back",
             by_judge=True),
)


DEMO_PAUSE_SECONDS = 30.0
"""How long (wall seconds) a demo run waits at a pause nobody can answer before rolling back."""


def demo_spec(image: str) -> RolloutSpec:
    # Up to 15 minutes per stage, passed early once the judge has the evidence (a healthy
    # canary needs about 16,000 requests to be shown no worse than the baseline's 0.1%).
    stages = [Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in DEMO_WEIGHTS]
    # Ten minutes of post-promotion monitoring instead of the default hour, to keep the demo short.
    # Nobody can answer a pause here (the demo's ephemeral API has no UI): a stage the judge could
    # not decide (a loaded machine shifts the simulated traffic) paused the demo for the default
    # hour of wall time. It is rolled back after DEMO_PAUSE_SECONDS instead, and said so.
    return RolloutSpec(image=image, stages=stages, analysis=Analysis(interval_seconds=60), monitor_seconds=600,
                       approvals=Approvals(timeout_seconds=DEMO_PAUSE_SECONDS, on_timeout="rollback"))


def _inbox(get_client, topic_arn: str) -> str:
    """An SQS queue subscribed to the alert topic, to show the notifications really went out."""
    sqs = get_client("sqs")
    url = sqs.create_queue(QueueName="rollway-demo-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    get_client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)
    return url


def _subjects(get_client, url: str) -> list[str]:
    sqs = get_client("sqs")
    subjects = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return subjects
        for m in got:
            subjects.append(json.loads(m["Body"]).get("Subject", ""))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def outcome_said(outcome: str) -> str:
    """A rollout's outcome as a person says it: "rolled back", not its code "rolled_back"."""
    return outcome.replace("_", " ")


def subjects_said(subjects: Sequence[str]) -> str:
    """The notices the alert topic delivered, one subject a line in the order received: a Python
    list of them (['Rollout starting: ...', 'Rollback: ...']) was read as code, not as pages."""
    if not subjects:
        return "SNS notices received: none"
    return f"SNS notices received ({len(subjects)}, by subject):\n" + "\n".join(f"    {s}" for s in subjects)


def result_table(result: RolloutResult) -> Table:
    """The scenario's stage table, rendered as the flows' is (its p99 legend under it)."""
    return console_table(result.stages, title=f"{result.image}: {outcome_said(result.outcome)}")


def _signal_behind(err: BaseException | None) -> int | None:
    """The signal that ended the flow run ``err`` came out of, or None.

    SIGTERM in a flow run is Prefect's to handle (TerminationSignal, then ours). Sent to the demo's
    process group (a supervisor, `timeout`), it stops the temporary Prefect server too: reporting
    the crash then fails, and that error, not the signal, leaves the run."""
    from prefect.exceptions import TerminationSignal

    from rollway.cli.up import Stopped

    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, TerminationSignal):
            return err.signal
        if isinstance(err, KeyboardInterrupt):
            # Ctrl-C is no TerminationSignal: a crash report that failed hid it the same way, and
            # the demo went on to its next scenario, reporting this one failed.
            return err.signum if isinstance(err, Stopped) else signal.SIGINT
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def run_scenario(scenario: Scenario, aws, get_client, targets: Targets, *, speed: float, seed: int, rps: float) -> bool:
    """Run ``scenario`` on a freshly provisioned account; whether it ended as expected. A signal
    unwinds out of it, saying (``where``) which scenario it stopped and where its rollout stood."""
    try:
        return _run_scenario(scenario, aws, get_client, targets, speed=speed, seed=seed, rps=rps)
    except KeyboardInterrupt as stop:
        if getattr(stop, "where", None) is None:  # stopped while the account was set up or the end checked
            stop.where = f"in scenario {scenario.name}, outside its canary run"  # type: ignore[attr-defined]
        raise


def _run_scenario(scenario: Scenario, aws, get_client, targets: Targets, *, speed: float, seed: int,
                  rps: float) -> bool:
    from flows.canary import canary
    from rollway.aws.ecs import EcsDeployer
    from rollway.aws.elbv2 import AlbRouter
    from rollway.sim.profiles import BehaviourProfile
    from rollway.sim.topology import provision, put_release_image
    from rollway.sim.traffic import TrafficSimulator

    console.rule(f"[bold]Scenario {scenario.name}")
    aws.reset()
    topology = provision(get_client, targets)
    inbox = _inbox(get_client, topology.topic_arn)
    image = put_release_image(get_client, targets, scenario.tag)  # the release a push would have left in ECR
    healthy = BehaviourProfile(error_probability=0.001, median_ms=120, sigma=0.5)
    clock = ClockSettings(speed=speed, anchor=time.time())
    # Said: the scenario before ran its clock on (A's window ends half an hour ahead), and the
    # next's stage windows went back in time without a word.
    console.print(f"a freshly provisioned account; its simulated clock starts anew at "
                  f"{time.strftime('%H:%M', time.gmtime(clock.anchor))} UTC and runs {speed:g}x the wall clock")
    simulator = TrafficSimulator(
        get_client, targets, topology, clock.build(),
        profiles={topology.initial_image: healthy, image: healthy.model_copy(update={"error_probability": scenario.error_probability})},
        default_profile=healthy, total_rps=rps, tick_seconds=60, seed=seed,
    )
    spec = demo_spec(image)
    with simulator:
        try:
            result = canary(
                spec=spec, actor="demo", aws_credentials_block=DEMO_CREDENTIALS_BLOCK, clock=clock,
            )
        except KeyboardInterrupt as stop:
            _quiet_slots()
            stop.where = where_it_stood(scenario, spec, get_client, targets)  # type: ignore[attr-defined]
            raise
        except Exception as err:  # noqa: BLE001 - the run's own log above has the traceback
            # A failed run is this scenario's result, not the end of the demo: the others still
            # run, and the last line counts it. (Its hooks rolled it back; Ctrl-C still unwinds.)
            if (signum := _signal_behind(err)) is not None:
                from rollway.cli.up import Stopped

                _quiet_slots()
                stopped = Stopped.by(signum)
                stopped.where = where_it_stood(scenario, spec, get_client, targets)  # type: ignore[attr-defined]
                raise stopped from err
            console.print(f"[bold red]NOT as expected[/]: the canary run failed: {error_said(err)}")
            return False
    console.print(result_table(result))

    weights = AlbRouter(get_client("elbv2"), targets).get_weights()
    deployer = EcsDeployer(get_client("ecs"), targets)
    stable, canary_svc = deployer.describe(targets.stable_service), deployer.describe(targets.canary_service)
    canary_image = deployer.image_of(canary_svc.task_definition)
    subjects = _subjects(get_client, inbox)
    console.print(f"read back from AWS: ALB weights stable/canary = [bold]{weights}[/bold]")
    # The image each revision names, as the checks below read it: the revision's number alone
    # showed nothing of the image a promoted canary runs or a rolled-back one was put back on.
    for service, image in ((stable, deployer.image_of(stable.task_definition)), (canary_svc, canary_image)):
        # Unwrapped: a digest-pinned image is longer than the line, and a break inside it hides it.
        console.print(f"  {service.name}: desired {service.desired}, {service.task_definition.rsplit('/', 1)[-1]} "
                      f"running {image}", soft_wrap=True)
    console.print(f"  {subjects_said(subjects)}", soft_wrap=True)

    unmet = unmet_expectations(
        scenario, spec, result, weights=weights, canary=canary_svc,
        canary_image=canary_image, subjects=subjects, targets=targets,
    )
    unseen = unseen_traffic(result, simulator.history, simulator.errors)
    if unseen:
        unmet.insert(0, unseen)  # the cause of whatever else is unmet: said first
    if unmet:
        console.print(f"[bold red]NOT as expected[/]: {outcome_said(result.outcome)}: {result.reason}")
        for why in unmet:
            console.print(f"  [red]-[/] {why}")
    else:
        console.print(f"[bold green]as expected[/]: {result.reason}")
    return not unmet


def _quiet_slots() -> None:
    """The stopped run's slot is renewed no more: its hook, which would release it, never runs
    once the demo's API is gone, and the renewals' warnings about that API came between the
    run's last lines and the demo's (``free_leftover_slot`` frees it at the next demo)."""
    from flows.slot import stop_renewals

    stop_renewals()


def where_it_stood(scenario: Scenario, spec: RolloutSpec, get_client, targets: Targets) -> str:
    """Which scenario a stop interrupted and where its rollout stood, as the load balancer on the
    embedded AWS (still up: it stops after this) reads back; for the demo's last line. Never raises.

    The canary flow keeps no ledger record of its stages: the weights are where it stands."""
    from rollway.aws.elbv2 import AlbRouter

    said = f"in scenario {scenario.name}"
    try:
        weights = AlbRouter(get_client("elbv2"), targets).get_weights()
    except Exception as err:  # noqa: BLE001 - the line still says which scenario
        return f"{said} (its load balancer could not be read: {error_said(err)})"
    split = f"the load balancer at {weights.stable}/{weights.canary} (stable/canary)"
    if weights.canary == 0:
        return f"{said}, with {scenario.tag} serving no traffic: {split}"
    stage = next((i for i, s in enumerate(spec.stages) if s.weight == weights.canary), None)
    at = f" (stage {stage + 1} of {len(spec.stages)})" if stage is not None else ""
    return f"{said}, with {scenario.tag} serving {weights.canary}% of the traffic{at}, not rolled back: {split}"


def unmet_expectations(
    scenario: Scenario, spec: RolloutSpec, result: RolloutResult, *, weights: Weights, canary: ServiceState,
    canary_image: str, subjects: list[str], targets: Targets,
) -> list[str]:
    """What the scenario's end differs in from what the demo (and the README) says it shows, as
    read back from AWS and the alert topic; empty when it is as expected.

    A promotion is the whole story: every stage of ``spec`` passed in order, the ALB at 0/100 on
    the canary service running the new image, and the window after 100 % watched ("Monitoring
    passed": a window whose checks read no metrics pages "Monitoring unverified" and still ends
    promoted). A rollback is the first stage's, with the rollback's own page ("Rollback: <canary>";
    "Rollback FAILED" and the follow-up pages start with the same word).
    """
    stages = [s.weights.canary for s in result.stages]
    paged = set(subjects)
    if scenario.expect == "promoted":
        planned = [s.weight for s in spec.stages]
        judged = result.pinned_image or result.image  # the revision names the digest the tag was pinned to
        checks = [
            (result.outcome == "promoted", f"outcome {outcome_said(result.outcome)}, not promoted"),
            (stages == planned, f"stages {stages}, not {planned}"),
            (all(s.decision == "passed" for s in result.stages),
             f"stage decisions {[s.decision for s in result.stages]}, not all passed"),
            (weights == Weights(stable=0, canary=100), f"the ALB is at {weights}, not 0/100"),
            (canary.desired > 0 and canary_image == judged,
             f"{canary.name} runs {canary_image} at {canary.desired} task(s), not {judged}"),
            (f"Monitoring passed: {targets.canary_service}" in paged,
             f"no 'Monitoring passed' page: the {spec.monitor_seconds / 60:g} minutes after 100% were not watched "
             "cleanly"),
            (not any(s.startswith("Rollback") for s in subjects), "a rollback was paged"),
        ]
    else:
        checks = [
            (result.outcome == "rolled_back", f"outcome {outcome_said(result.outcome)}, not rolled back"),
            # At the first stage, by the stage loop: not promoted and caught by the monitor later.
            (stages == [spec.stages[0].weight] and result.stages[-1].decision == "rollback",
             f"stages {stages} ending in {result.stages[-1].decision if result.stages else 'none'!r}, not a "
             f"rollback at {spec.stages[0].weight}%"),
            # Told apart as the ledger and the page tell them: the guardrail's rollback on the load
            # balancer's own 5xx does not say "guardrail".
            (not scenario.by_judge or asked_by(result.reason) != GUARDRAIL,
             "rolled back by a guardrail, not by the judge's comparison with the baseline"),
            (weights == Weights(stable=100, canary=0), f"the ALB is at {weights}, not 100/0"),
            (canary.desired == 0, f"{canary.name} still wants {canary.desired} task(s)"),
            (f"Rollback: {targets.canary_service}" in paged, "no 'Rollback' page went out"),
            (not any(s.startswith("Rollback FAILED") for s in subjects), "a failed rollback was paged"),
        ]
    return [why for ok, why in checks if not ok]


def unseen_traffic(result: RolloutResult, ticks: Sequence[TickRecord], failures: Sequence[str]) -> str | None:
    """Why the scenario judged nothing, when no stage of ``result`` read a single request of
    either version (None when one did): what the traffic simulator published (``ticks``) and
    its last failure, so that a reader can tell a simulator that drew nothing or failed from
    traffic the run could not read back. The stage then ends inconclusive and the demo's
    unanswerable pause rolls it back, which the other checks report without a cause."""
    # A version of a stage whose metrics were never read (None) read no request either.
    if not result.stages or any(sample is not None and sample.requests
                                for s in result.stages for sample in (s.canary, s.baseline)):
        return None
    served = sum(draw.requests for tick in ticks for draw in tick.served.values())
    if not ticks:
        published = "the traffic simulator published no simulated minute at all"
    elif not served:
        published = f"the traffic simulator published {len(ticks)} simulated minute(s) without a request"
    else:
        published = (f"the traffic simulator published {served} requests over {len(ticks)} simulated minute(s), "
                     "but the run read none back from CloudWatch")
    failed = f"; {len(failures)} of its minutes failed, the last: {failures[-1]}" if failures else ""
    return f"no traffic at all: 0 requests of either version in every stage, so nothing was judged; {published}{failed}"


def free_leftover_slot(targets: Targets) -> None:
    """Free the canary flow's Prefect concurrency slot of ``targets`` if a dead run left it taken.

    A slot is held under a lease the API server keeps in its memory, and only a server's lease
    service frees the slot of a lease that ran out. The demo's ephemeral API runs no such service
    and ends with the demo: a demo killed outright (SIGKILL, the OOM killer, a CI job's kill after
    its grace) during a scenario left the slot taken in the Prefect home's database, and every
    later demo in that home was refused ("another canary run ... is under way") for good.

    A fresh ephemeral API holds no lease, so a taken slot is a dead run's, unless a `rollway up`
    on this Prefect home (whose server shares the database) runs a canary: the slot is freed only
    while no `rollway up` holds the home.
    """
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    from flows.canary import canary_slot_name
    from rollway.cli.up import HomeInUse, home_lock, prefect_home

    name = canary_slot_name(targets)
    with ExitStack() as held:
        try:
            held.enter_context(home_lock(prefect_home()))
            ours = True
        except HomeInUse:
            ours = False  # a `rollway up` runs on this home: its canary run may hold the slot
        # Started (and said) either way: the demo's runs need it next.
        client = held.enter_context(demo_api_client())
        if not ours:
            return
        try:
            taken = client.read_global_concurrency_limit_by_name(name).active_slots
        except ObjectNotFound:
            return
        if taken:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
            # Unwrapped: the slot's name is longer than a line of a log, and a break before it
            # parted the line from the name a person searches for.
            console.print(f"freed the Prefect concurrency slot {name!r}: a run that died with its Prefect API "
                          "left it taken", soft_wrap=True)


STARTUP_SETTING = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


class ApiNotStarted(RuntimeError):
    """The demo's own Prefect API (a temporary server) did not start."""


def demo_api_client() -> Any:
    """A client of the demo's Prefect API, whose first use starts it, said before it is waited on.

    A first start in a Prefect home creates its database: over a minute of a busy machine in which
    the demo said nothing after Prefect's own "Starting temporary server" line, and, past
    ``STARTUP_SETTING``'s seconds, it ended in a traceback of Prefect's internals.

    Raises:
        ApiNotStarted: the server did not answer in time (or did not start), saying how to wait longer.
    """
    from prefect import get_client
    from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

    from rollway.cli.up import prefect_home

    said_to = prefect_home() / API_LOG
    console.print("starting the demo's Prefect API (a temporary server on 127.0.0.1; its first start in a Prefect "
                  "home creates its database, a minute or more on a busy machine; its own messages go to "
                  f"{said_to}) ...", soft_wrap=True)
    try:
        with _stderr_of_processes_started_to(said_to):
            return get_client(sync_client=True)  # starts the server, and waits for it to answer
    except RuntimeError as err:
        waited = PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value()
        raise ApiNotStarted(
            f"the demo's Prefect API did not start: {str(err).strip().rstrip('.')} (waited {waited:g} s); on a busy "
            f"machine give it longer, e.g. {STARTUP_SETTING}=300 rollway demo") from None


API_LOG = "rollway-demo-api.log"
"""The file, in the Prefect home, that the demo's temporary Prefect server writes its own messages to."""


@contextmanager
def _stderr_of_processes_started_to(path: Path) -> Iterator[None]:
    """Processes started inside write their standard error to ``path`` (made afresh), for their lives.

    The temporary server inherited the demo's terminal: Ctrl-C, which reaches every process of the
    terminal's group, stopped it mid-start with its own "Aborted!" among the demo's lines, and its
    stop at the demo's end (or at a signal) wrote tracebacks of its cancelled work (task_run_recorder's
    "Error flushing 1 events") under the demo's last line. Only the server starts in here; the
    demo's own lines in the meantime (Prefect's "Starting temporary server" among them) go there too."""
    sys.stderr.flush()
    kept = os.dup(2)
    try:
        with path.open("wb") as log:
            os.dup2(log.fileno(), 2)  # the server's process inherits the descriptor, not the file's name
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(kept, 2)
    finally:
        os.close(kept)


class _ServerStopUnsaid(logging.Filter):
    """Drops Prefect's "Stopping temporary server on ..." line, which came after the demo's last line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Stopping temporary server on ")


def server_stop_unsaid() -> None:
    """For the rest of the process, Prefect's console leaves out its temporary server's stop.

    Prefect stops that server at the interpreter's exit, after the demo's last line ("demo finished
    ..." and what to try next, or, stopped by a signal, "demo stopped ..."), and said so beneath it:
    the demo's own line is now the last one."""
    import prefect.main  # noqa: F401 - configures Prefect's logging, its console handler on the root logger
    from prefect.logging.handlers import PrefectConsoleHandler

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(_ServerStopUnsaid())


API_LOOK_SECONDS = 0.2
"""How often the demo looks whether its Prefect API server is still running."""


@contextmanager
def no_retries_once_the_api_is_gone(api_url: str | None = None, *,
                                    look_seconds: float = API_LOOK_SECONDS) -> Iterator[None]:
    """For the demo's duration: once its Prefect API server no longer listens, Prefect's client
    stops retrying requests to it.

    A signal sent to the demo's process group (Ctrl-C in its terminal, a supervisor's SIGTERM)
    stops that server too. The run then reported its crash to it, retrying each request with
    back-offs of 2 to 32 s: the demo went on for about 70 s after the signal before it said it
    had stopped. Nothing restarts a stopped ephemeral server, so a retry can only wait.

    Args:
        api_url: the API address watched; None: the one Prefect's public ``get_client()`` talks to
            (with PREFECT_API_URL unset, the ephemeral server it starts here if it is not running yet).
        look_seconds: how often the server is looked at.
    """
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, get_current_settings

    if api_url is None:
        from prefect import get_client

        # Public: the client's address is the ephemeral server's. Prefect's SubprocessASGIServer,
        # which this watched before, is an internal whose process handle no API promises.
        with get_client(sync_client=True) as client:
            api_url = str(client.api_url)
    address = _host_and_port(api_url)
    # The settings of this context (the demo's temporary ones) hold the retries every request reads.
    # Prefect's log and event workers copied this context when the runs started them: they read
    # these settings too, and so drained the runs' last lines at exit without retries either.
    settings = get_current_settings()
    retries = PREFECT_CLIENT_MAX_RETRIES.value()
    done, gone = threading.Event(), threading.Event()

    def watch() -> None:
        while not done.wait(look_seconds):
            if _api_gone(address, look_seconds):
                settings.client.max_retries = 0
                gone.set()
                return

    watcher = threading.Thread(target=watch, name="rollway-demo-api-watch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        if not gone.is_set():  # gone, it stays gone: the workers' drains at exit still read these settings
            settings.client.max_retries = retries


def _host_and_port(api_url: str) -> tuple[str, int]:
    """Where the API at ``api_url`` listens (its scheme's port when the address names none)."""
    from urllib.parse import urlsplit

    parts = urlsplit(api_url)
    return parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80)


def _api_gone(address: tuple[str, int], timeout: float) -> bool:
    """Whether the API at ``address`` no longer listens: a server stopped listens no more at the
    signal (it took seconds more to close the connections it had and exit), and one that exited
    refuses every connection."""
    try:
        socket.create_connection(address, timeout=timeout).close()
    except ConnectionRefusedError:
        return True
    except OSError:  # slow to accept (a loaded machine), or a transient failure: not a refusal
        return False
    return False


def run_demo(*, speed: float, seed: int, rps: float) -> int:
    from rollway.cli.up import errors, stop_on_signals, stopped_by

    stop_on_signals()  # SIGTERM unwinds too, so the embedded AWS and the temporary server stop
    started = time.monotonic()
    server_stop_unsaid()
    try:
        return _scenarios(speed=speed, seed=seed, rps=rps, started=started)
    except ApiNotStarted as err:  # before the first scenario: nothing to run them on
        errors.print(f"error: {err}", markup=False)
        return 1
    except KeyboardInterrupt as stop:
        # It ended silently (or in a traceback) with 130 whatever the signal: a supervisor's
        # SIGTERM read as Ctrl-C.
        errors.print(stopped_said(stop, time.monotonic() - started), markup=False)
        # The process ends next, and the interpreter's last collections went through every object the
        # scenarios left (moto's state, Prefect's): seconds more of a stop asked for. Nothing is
        # collected after this; the process's end frees it all at once.
        gc.freeze()
        return stopped_by(stop)[1]


def stopped_said(stop: KeyboardInterrupt, seconds: float) -> str:
    """The demo's last line once a signal stopped it ``seconds`` after it started: the signal, and
    the scenario it interrupted with where its rollout stood (``where_it_stood``), when one ran."""
    from rollway.cli.up import stopped_by

    # Nothing of the rollout outlives the demo: the embedded AWS it ran on stops with it.
    where = getattr(stop, "where", None)
    return (f"demo stopped ({stopped_by(stop)[0]}) after {seconds:.1f} s, "
            + (f"{where}; the embedded AWS it ran on stops with the demo" if where
               else "before its scenarios had all run"))


def _scenarios(*, speed: float, seed: int, rps: float, started: float) -> int:
    """``run_demo``'s scenarios, once signals unwind."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks.credentials import client_factory, credentials_for_endpoint
    from blocks.saved import without_password
    from rollway.sim.server import EmbeddedAws

    targets = Targets()
    # The demo's flows run on Prefect's ephemeral API, as documented, whatever PREFECT_API_URL says:
    # `rollway up` tells people to export it, and a demo run later in that shell failed with a
    # connection traceback once `up` was stopped (or ran its scenarios on up's server while it ran).
    elsewhere = PREFECT_API_URL.value()
    with temporary_settings(restore_defaults={PREFECT_API_URL}), task_completions_unsaid(), EmbeddedAws() as aws:
        console.print(f"embedded AWS (moto) on {aws.endpoint_url}; simulated clock at {speed:g}x")
        if elsewhere:
            # Said without the basic-auth password the address may hold, as a refusal says it.
            console.print(f"Prefect: the demo's own ephemeral API, not PREFECT_API_URL ({without_password(elsewhere)})")
        free_leftover_slot(targets)
        credentials = credentials_for_endpoint(aws.endpoint_url, targets.region)
        credentials.save(DEMO_CREDENTIALS_BLOCK, overwrite=True)
        get_client = client_factory(credentials)
        # Watched once free_leftover_slot has started it: a Prefect home this user cannot write
        # is refused there, in one line, before any server start fails on it.
        with no_retries_once_the_api_is_gone():
            results = [
                run_scenario(s, aws, get_client, targets, speed=speed, seed=seed, rps=rps) for s in SCENARIOS
            ]
    elapsed = time.monotonic() - started
    console.rule()
    console.print(f"demo finished in {elapsed:.1f} s: {sum(results)}/{len(results)} scenarios as expected")
    said_at_the_end(SCENARIOS, results)
    return 0 if all(results) else 1


def said_at_the_end(scenarios: Sequence[Scenario], results: Sequence[bool]) -> None:
    """The demo's last lines, under its count: which scenario was not as expected, where its runs
    are kept and what to try next. The count alone left a person evaluating rollway at a prompt,
    not knowing that the runs' logs and reports outlive the demo (the embedded AWS does not) nor
    that `rollway up` shows them, on the same Prefect home, beside the deployments to try."""
    from rollway.cli.up import prefect_home

    for scenario, ok in zip(scenarios, results):
        if not ok:
            console.print(f"[bold red]NOT as expected[/]: {scenario.name} (its lines above say why)")
    home = prefect_home()
    console.print(f"the scenarios' canary runs (their logs, stage tables and summaries) stay in the Prefect home "
                  f"{home}; the embedded AWS they ran on stopped with the demo")
    # `make up` serves the Makefile's home unless PREFECT_HOME is set: the same home only for a demo
    # `make demo` ran (MAKELEVEL set); after `rollway demo` by hand it showed none of these runs.
    up = f"`PREFECT_HOME={home} rollway up`" + (" (or `make up`)" if os.environ.get("MAKELEVEL") else "")
    console.print(f"next: {up} starts a Prefect server on that home and "
                  "prints the Prefect UI's address: its Runs and Artifacts show these runs, and it serves every "
                  "deployment on an embedded AWS of its own with simulated traffic, to start a rollout yourself")
