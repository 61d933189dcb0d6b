"""``rollway up``: a Prefect server, the embedded AWS with live traffic, and every deployment served.

What a new user needs to try rollway from the Prefect UI on one machine:

1. ``prefect server start`` on 127.0.0.1 (SQLite under $PREFECT_HOME), waited on until healthy;
2. the embedded AWS (moto) with Webordinary's topology provisioned;
3. the traffic simulator on a scaled clock: the stable image and ``:2.0.0`` behave well,
   ``:2.1.0`` fails 5% of its requests, so both a promotion and a rollback can be tried;
4. the RollwayTargets and AwsCredentials blocks saved on the server;
5. every deployment served (``deployments/serve.py``), its parameters defaulting to those
   blocks and to the simulator's clock;
6. a stand-in for Webordinary's edit API on 127.0.0.1 (``ValidationApp``), which
   validate_deployment checks by default, and what verify_infrastructure's checklist needs of
   the embedded account: an SQS inbox subscribed to the alert topic (where the rollback
   pages can be read) and the targets' CloudFormation stacks recorded.

Ctrl-C (or SIGTERM) stops all of it, children by their pid, the runner before the server.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import signal
import time
import traceback
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.markup import escape

from rollway.bounds import as_given
from rollway.cli import home_unusable
from rollway.cli.blocks import DEPLOYMENT, deployment_path
from rollway.cli.weekly_schedule import WEEKLY_CRON, WEEKLY_TIMEZONE, weekly_schedule
from rollway.cli.processes import (HOST, Child, PrefectServer, ProcessFailed, first_unprivileged_port, free_port,
                                   port_unusable, prefect_server_on, serve_process, wait_served)
from rollway.clock import MAX_SPEED, MIN_SPEED, ClockSettings, wall_span
from rollway.ports import Clock
from rollway.sim.profiles import BehaviourProfile
from rollway.sim.topology import Topology
from rollway.sim.traffic import MAX_RPS, TrafficSimulator
from rollway.spec import RolloutSpec
from rollway.targets import Targets

DEFAULT_PORT = 4200
INBOX_QUEUE = "rollway-up-inbox"
"""SQS queue ``rollway up`` subscribes to the alert topic: the checklist wants a subscriber,
and a person can read the rollback pages there."""
# 0.01% errors: validate_deployment's SuccessRate floor is 99.9% (the seed's "error rate < 0.1%"),
# and a healthy version right at it (0.1%) would pass or fail its check by chance.
HEALTHY = BehaviourProfile(error_probability=0.0001, median_ms=120, sigma=0.5)
IMAGE_PROFILES: dict[str, BehaviourProfile] = {
    "2.0.0": HEALTHY,
    "2.1.0": HEALTHY.model_copy(update={"error_probability": 0.05}),
}
"""How the simulator's named images behave (by tag); any other image behaves like the stable one."""

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def simulator_for(
    get_client: Callable[[str], Any],
    targets: Targets,
    topology: Topology,
    clock: Clock,
    *,
    rps: float = 1000.0,
    seed: int = 7,
) -> TrafficSimulator:
    """A traffic simulator with the stable image and the named images of ``IMAGE_PROFILES``."""
    profiles = {f"{topology.repository_uri}:{tag}": profile for tag, profile in IMAGE_PROFILES.items()}
    profiles[topology.initial_image] = HEALTHY
    return TrafficSimulator(
        get_client, targets, topology, clock, profiles=profiles, default_profile=HEALTHY,
        total_rps=rps, tick_seconds=60, seed=seed,
    )


def prepare_checklist(get_client: Callable[[str], Any], targets: Targets, topology: Topology) -> str:
    """Give the embedded account what verify_infrastructure checks and ``provision`` leaves out.

    ``provision`` builds the account every test starts from, where "no subscriber" and "no
    stacks" are findings worth testing; ``rollway up`` is where people try the flows, so it
    adds them here: an SQS inbox subscribed to the alert topic (raw delivery off, so each
    message is SNS's envelope with its Subject) and each of ``targets.stacks`` recorded as a
    CloudFormation stack holding one small resource, as cdk would have left it. Safe to call
    again: the queue and subscription are found, a stack already recorded is left alone.

    Returns:
        The inbox queue's URL.
    """
    sqs = get_client("sqs")
    queue_url = sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    get_client("sns").subscribe(TopicArn=topology.topic_arn, Protocol="sqs", Endpoint=queue_arn)
    cloudformation = get_client("cloudformation")
    recorded = {
        stack["StackName"]
        for page in cloudformation.get_paginator("list_stacks").paginate()
        for stack in page["StackSummaries"]
        if stack["StackStatus"] != "DELETE_COMPLETE"
    }
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in targets.stacks:
        if stack not in recorded:
            try:
                cloudformation.create_stack(StackName=stack, TemplateBody=body)
            except cloudformation.exceptions.AlreadyExistsException:
                # botocore resent a create whose answer was late (the embedded server's first
                # CloudFormation request imports every service's models) and the first attempt
                # made it: the stack is there, as wanted.
                pass
    return queue_url


def prefilled_spec(topology: Topology) -> str:
    """The RolloutSpec (JSON) the rollout forms are pre-filled with: a rollout of ``:2.0.0``.

    Only what ``rollway up`` chooses, the image: serve.py decides the weekly zone (its
    ``--weekly-timezone``, the advance_phase schedule's) and fills it in for a spec that names
    none. Written out with every default, the spec named UTC itself, so serve.py's fill-in never
    applied, and a serve.py whose schedule was in another zone refused to start."""
    return RolloutSpec(image=f"{topology.repository_uri}:2.0.0").model_dump_json(exclude_unset=True)


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser().resolve()


HOME_LOCK = "rollway-up.lock"


class HomeInUse(RuntimeError):
    """Another ``rollway up`` holds this Prefect home."""


class HomeUnusable(RuntimeError):
    """The Prefect home cannot be made, or its lock file written, by this user."""


@contextmanager
def home_lock(home: Path) -> Iterator[int]:
    """Hold ``home`` for this ``rollway up`` while it runs; yields the lock's descriptor.

    Two instances on one home share the server's database: the second one's blocks would
    point the first one's runs at its own embedded AWS, and its runner would serve the same
    deployments with another clock. The lock is the kernel's (flock), held by its open file:
    the children are handed the descriptor, so an instance killed with its children still
    running keeps the home until they exit too, and nothing stale is left once all are gone.

    Raises:
        HomeInUse: another instance holds it; the message names its pid and what to do.
        HomeUnusable: this user cannot make it or write its lock file.
    """
    try:
        home.mkdir(parents=True, exist_ok=True)
        handle = (home / HOME_LOCK).open("a+")
    except OSError as err:
        # A home this user cannot write (~/.prefect of another user, a read-only directory)
        # ended `rollway up` in a traceback.
        raise HomeUnusable(f"Prefect home {home} cannot be used: {home_unusable(home, err)}; set PREFECT_HOME to a "
                           "directory this user can write") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise HomeInUse(_in_use(home, owner)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield handle.fileno()
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _in_use(home: Path, owner: str) -> str:
    """Who holds ``home`` (``owner``: "pid N" as the holder wrote it) and what to do."""
    elsewhere = "or set PREFECT_HOME to another directory to run a second one"
    holders = _holders(home / HOME_LOCK)
    if holders and owner not in {f"pid {pid}" for pid in holders}:
        # The `rollway up` named was killed outright and its children, told to stop, are still
        # stopping (or ignore it): "stop it first" sent people to kill a pid that was gone.
        pids = [str(pid) for pid in holders]
        return (f"a `rollway up` that has exited ({owner}) left what it started running on Prefect home {home} "
                f"(pid {', '.join(pids)}): wait until it has stopped, or stop it (kill {' '.join(pids)}), {elsewhere}")
    return (f"another `rollway up` ({owner}, or the server and runner it started) is running on Prefect home {home}: "
            f"stop it first, {elsewhere}")


def _holders(lock: Path) -> list[int]:
    """The pids of the other processes holding ``lock`` open, as far as /proc shows (Linux, this
    user's processes); empty where it shows none."""
    target = os.path.realpath(lock)
    found = []
    for descriptors in Path("/proc").glob("[0-9]*/fd"):
        pid = int(descriptors.parent.name)
        try:
            if pid != os.getpid() and any(os.readlink(fd) == target for fd in descriptors.iterdir()):
                found.append(pid)
        except OSError:  # another user's process, or one that just exited
            continue
    return sorted(found)


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, unwound as Ctrl-C is, remembering which signal it was: raised with the
    signal's name (``Stopped.by(signum)``), its only argument, so it pickles as any exception."""

    @classmethod
    def by(cls, signum: int) -> "Stopped":
        return cls(signal.Signals(signum).name)

    @property
    def signum(self) -> int:
        return signal.Signals[self.args[0]].value


def stopped_by(stop: KeyboardInterrupt) -> tuple[str, int]:
    """The signal's name and the exit code that names it, 128 + its number, as a shell reports a
    command that signal ended: a supervisor's SIGTERM read 130, Ctrl-C's code."""
    signum = stop.signum if isinstance(stop, Stopped) else signal.SIGINT
    return signal.Signals(signum).name, 128 + signum


def stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP (the terminal closed) all unwind as KeyboardInterrupt, so
    every child is stopped (``stopped_by`` tells which one it was).

    SIGINT gets Python's handler back explicitly: a shell that starts a command in the
    background makes it ignore SIGINT, and Python then never raises KeyboardInterrupt.
    """

    def handler(signum: int, frame: Any) -> None:
        raise Stopped.by(signum)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def check_speed(speed: float) -> None:
    """Refuse a rollout clock speed the runs would refuse, before starting anything.

    Raises:
        ValueError: naming the allowed range.
    """
    if not MIN_SPEED <= speed <= MAX_SPEED:
        raise ValueError(f"--speed {as_given(speed)} is not a usable rollout clock speed: it must be from "
                         f"{as_given(MIN_SPEED)} (real time) to {as_given(MAX_SPEED)}")


def check_rps(rps: float, *, allow_zero: bool) -> None:
    """Refuse a simulated request rate the traffic simulator cannot run (or, for the demo, one
    that gives the judge nothing to judge).

    Raises:
        ValueError: naming --rps and what it must be.
    """
    if not (math.isfinite(rps) and (rps >= 0 if allow_zero else rps > 0)):
        least = "0 or more" if allow_zero else "over 0"
        raise ValueError(f"--rps {as_given(rps)} is not a request rate: it must be a finite number, {least}")
    if rps > MAX_RPS:
        # Every dead-lettered request is an SQS message: far above MAX_RPS a tick of a
        # dead-lettering version would not end, and the runs would see no metrics.
        raise ValueError(f"--rps {as_given(rps)} is more than the traffic simulator can draw: at most {MAX_RPS:,.0f} "
                         "requests per simulated second")


def check_up_options(*, port: int | None, speed: float, rps: float, poll_seconds: float,
                     weekly_cron: str = WEEKLY_CRON, weekly_timezone: str = WEEKLY_TIMEZONE) -> None:
    """Refuse options ``rollway up`` cannot run with, before it starts anything (the server's
    first start migrates its database; the simulator would only fail after that).

    Raises:
        ValueError: naming the option and what it must be.
    """
    from flows.params import MAX_POLL_SECONDS

    check_speed(speed)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port: it must be from 1 to 65535")
    check_rps(rps, allow_zero=True)
    if not (math.isfinite(poll_seconds) and poll_seconds > 0):
        raise ValueError(f"--poll-seconds {as_given(poll_seconds)} is not an interval: it must be a finite number over 0")
    if poll_seconds > MAX_POLL_SECONDS:
        # Passed on to the served deployments' runner (deployments/serve.py), which refuses it too:
        # checked here, before the server's first start migrates its database.
        raise ValueError(f"--poll-seconds {as_given(poll_seconds)} is too long: at most {MAX_POLL_SECONDS} (a run started "
                         "from the UI or a schedule waits until the next look to start)")
    # Passed on to serve.py, which refuses them as it starts: by then the server had migrated its
    # database and the embedded AWS had been provisioned, for nothing.
    weekly_schedule(weekly_cron, weekly_timezone)


def server_port(port: int | None) -> int:
    """The port to start the Prefect server on.

    Args:
        port: the port the user asked for; None: 4200, or any free port when 4200 is taken
            (and a line says so).

    Raises:
        ValueError: the port asked for is taken (saying so when a Prefect server answers there)
            or this user may not listen on it. The user chose it (a bookmark, a firewall rule, a
            PREFECT_API_URL elsewhere), so starting on another one would mislead them.
    """
    if port is not None:
        refused = port_unusable(port)
        if refused is None:
            return port
        # One line: why, and what to do instead. "Taken" was said of every refused bind, and a
        # user looked for a process on a privileged port nothing listened on.
        instead = (f"choose another --port, or leave --port out to use "
                   f"{'' if port == DEFAULT_PORT else f'{DEFAULT_PORT} or '}any free port")
        if isinstance(refused, PermissionError):
            raise ValueError(f"--port {port} on {HOST} needs privileges this user does not have (ports below "
                             f"{first_unprivileged_port()} do): {instead}")
        if refused.errno != errno.EADDRINUSE:
            raise ValueError(f"--port {port} cannot be listened on at {HOST}: {refused.strerror}; {instead}")
        what = (" by a Prefect server (another `rollway up`, or `prefect server start`)"
                if prefect_server_on(port) else "")
        raise ValueError(f"--port {port} is taken on {HOST}{what}: stop what listens there, or {instead}")
    chosen = free_port(DEFAULT_PORT)
    if chosen != DEFAULT_PORT:
        console.print(f"port {DEFAULT_PORT} is taken on {HOST}; using port {chosen} instead")
    return chosen


def served_schedules(api_url: str) -> list[tuple[str, str]] | None:
    """The active cron schedules (cron, time zone) of the advance_phase deployment as the server
    holds them, the ones the runner registered; None when the API cannot say.

    Read from the server, not assumed: the instructions said "Mondays 09:00 UTC" whatever
    schedule advance_phase was served on.
    """
    import urllib.parse

    path = urllib.parse.quote(deployment_path("advance_phase"))
    try:
        with urllib.request.urlopen(f"{api_url}/deployments/name/{path}", timeout=10.0) as response:
            found = json.loads(response.read())
        return [(s["schedule"]["cron"], s["schedule"].get("timezone") or "UTC") for s in found.get("schedules") or ()
                if s.get("active") and (s.get("schedule") or {}).get("cron")]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # URLError is an OSError
        return None


def schedule_words(schedules: Sequence[tuple[str, str]] | None, now: float) -> str:
    """What the instructions say of the weekly advance_phase deployment's ``schedules``
    (``served_schedules``), each with its next run after ``now``."""
    from flows.progressive import schedule_fires
    from rollway.weekly import describe

    if schedules is None:
        return "runs on the schedule its deployment shows in the UI (it could not be read here)"
    if not schedules:
        return (f"has no active schedule: run it yourself (Deployments -> {deployment_path('advance_phase')} -> Run) "
                "to start each next phase")
    said = [f"{cron!r} in {zone}, next at {describe(schedule_fires(cron, zone, now, count=1)[0], zone)}"
            for cron, zone in schedules]
    return f"runs on its schedule {' and on '.join(said)}"


def _instructions(server: PrefectServer, topology: Topology, speed: float, home: Path, *,
                  validation_url: str, targets: Targets, schedules: Sequence[tuple[str, str]] | None,
                  now: float | None = None) -> None:
    """Where to click and what to type. ``schedules``: the advance_phase deployment's as served
    (``served_schedules``); ``now``: wall seconds its next run is counted from (default: now)."""
    repo = topology.repository_uri
    console.rule("[bold]rollway is up")
    console.print(f"Prefect UI:      [bold]{server.url}[/bold]   (API {server.api_url})")
    console.print(f"Prefect home:    {escape(str(home))} (server log: {escape(str(server.log))})")
    console.print(f"Rollout clock:   {as_given(speed)}x (a 10-minute bake takes {600 / speed:.0f} s)")
    console.print(f"Images to try:   {repo}:2.0.0 (healthy), {repo}:2.1.0 (fails 5% of requests)")
    console.print(f"Edit API:        {validation_url} (a stand-in; validate_deployment checks it by default)")
    console.print(f"Alert inbox:     SQS queue {INBOX_QUEUE}, subscribed to {targets.alert_topic} (rollback pages)")
    console.print(f"Stacks recorded for the checklist: {', '.join(targets.stacks)}")
    console.print(
        "\n[bold]Try it:[/bold]\n"
        f"  1. Open {server.url} -> Deployments -> {deployment_path('progressive_rollout')} -> Run -> Custom run.\n"
        "     The form is pre-filled with a rollout of :2.0.0 (5, 25, 50, 75, 100%, approvals before\n"
        "     25% and 100%); change the image to :2.1.0 to watch the judge roll it back.\n"
        "  2. Open the run. When it shows Paused, click Resume, choose approve, reject or hold (ask again\n"
        "     later), type your name and submit. The table above the form is the stage's canary-vs-baseline\n"
        "     summary.\n"
        "  3. The run's Artifacts tab shows the progress, a table per stage and the summary.\n"
        "\n[bold]From another terminal[/bold] (export PREFECT_API_URL first):\n"
        f"  export PREFECT_API_URL={server.api_url}\n"
        "  .venv/bin/rollway status     # ledger, stage, live ALB weights, the paused run\n"
        "  .venv/bin/rollway promote --approver you\n"
        "  .venv/bin/rollway hold --approver you --comment why\n"
        "  .venv/bin/rollway abort --approver you\n"
        "\nverify_infrastructure and validate_deployment run as they are against the embedded account\n"
        "and the stand-in edit API.\n"
        f"\nThe weekly advance_phase deployment {schedule_words(schedules, time.time() if now is None else now)};\n"
        "set phased=true in the form to stop at the end of each weekly phase."
        # The cron fires on the wall calendar while the rollout clock runs faster: a phase is due
        # within hours of wall time, and the scheduled run may be days away. A person trying the
        # weekly plan waited for a run that would not come before Monday.
        + (f" At {as_given(speed)}x a rollout week passes in {wall_span(7 * 86400 / speed, hours=True)}, long before\n"
           f"the schedule's next run: start each next phase yourself (Deployments -> {deployment_path('advance_phase')}\n"
           "-> Run) once the phased run's summary says it is due."
           if speed > 1 and schedules != [] else "")
        + "\nCtrl-C stops everything."
    )


def _watch(*children: Child) -> None:
    """Block until a child exits (raises ProcessFailed) or Ctrl-C (KeyboardInterrupt)."""
    while True:
        for child in children:
            child.check_running()
        # Watching children; a signal ends the wait at once.
        time.sleep(1.0)


def run_up(*, port: int | None, speed: float, rps: float, seed: int, poll_seconds: float,
           weekly_cron: str = WEEKLY_CRON, weekly_timezone: str = WEEKLY_TIMEZONE) -> int:
    """Start everything, print where to click, and keep it running until Ctrl-C.

    Args:
        port: the Prefect server's port, refused when taken (None: 4200 if free, else any free port).
        speed: rollout clock, simulated seconds per wall second (the simulator and the runs share it).
        rps: simulated requests per second across both versions.
        seed: the simulator's seed.
        poll_seconds: how often the runner looks for new runs.
        weekly_cron: when advance_phase runs, and ``weekly_timezone``, its zone (serve.py's options).

    Returns:
        128 + the signal's number once stopped (130 after Ctrl-C, 143 after SIGTERM), 1 when a child
        or a start-up step failed (one error line naming it), 2 when ``port`` is taken, another instance runs
        on this Prefect home or this user cannot write it (nothing started).
    """
    home = prefect_home()
    with ExitStack() as held:
        try:
            lock = held.enter_context(home_lock(home))
            port = server_port(port)
        except (HomeInUse, HomeUnusable, ValueError) as err:
            # Printed as written: a home such as /tmp/a[/b] was read as markup, and rich's
            # MarkupError replaced the refusal with a traceback.
            errors.print(f"[red]error:[/red] {escape(str(err))}")
            return 2
        return _run(home, port, speed=speed, rps=rps, seed=seed, poll_seconds=poll_seconds, lock=lock,
                    weekly=(weekly_cron, weekly_timezone))


def _run(home: Path, port: int, *, speed: float, rps: float, seed: int, poll_seconds: float, lock: int,
         weekly: tuple[str, str] = (WEEKLY_CRON, WEEKLY_TIMEZONE)) -> int:
    """``run_up`` once the home is held and the port chosen."""

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from blocks.credentials import client_factory, credentials_for_endpoint
    from blocks.register import CREDENTIALS_BLOCK, TARGETS_BLOCK, save_blocks
    from rollway.sim.app import ValidationApp
    from rollway.sim.server import EmbeddedAws
    from rollway.sim.topology import provision, put_release_image

    stop_on_signals()
    server = PrefectServer(home, port, log=home / "rollway-up-server.log", pass_fds=(lock,))
    targets = Targets()
    step = "starting the Prefect server"  # what is under way, for the error line if it fails
    try:
        # Unwinds in reverse: the runner stops first, then the traffic, the AWS, the server.
        with ExitStack() as stack:
            console.print(f"starting prefect server on {server.url} (a first start migrates its database) ...")
            stack.enter_context(server)
            server.wait_healthy(timeout_seconds=180)
            step = "starting the embedded AWS"
            stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
            aws = stack.enter_context(EmbeddedAws())
            console.print(f"embedded AWS (moto) on {aws.endpoint_url}; provisioning Webordinary's topology ...")
            credentials = credentials_for_endpoint(aws.endpoint_url, targets.region)
            get_client = client_factory(credentials)
            step = "provisioning the embedded AWS"
            topology = provision(get_client, targets)
            prepare_checklist(get_client, targets, topology)
            for tag in IMAGE_PROFILES:  # in ECR, as publish_container leaves them: a rollout pins its tag there
                put_release_image(get_client, targets, tag)
            step = f"saving the blocks {TARGETS_BLOCK} and {CREDENTIALS_BLOCK} on the Prefect server"
            save_blocks(targets, credentials)
            step = "starting the traffic simulator and the stand-in edit API"
            clock = ClockSettings(speed=speed, anchor=time.time())
            stack.enter_context(simulator_for(get_client, targets, topology, clock.build(), rps=rps, seed=seed))
            validation_url = stack.enter_context(ValidationApp()).url
            serve = serve_process(
                server.api_url, targets_block=TARGETS_BLOCK, credentials_block=CREDENTIALS_BLOCK, clock=clock,
                poll_seconds=poll_seconds, spec_json=prefilled_spec(topology), validation_url=validation_url,
                phased=False, home=home, pass_fds=(lock,), weekly_cron=weekly[0], weekly_timezone=weekly[1],
            )
            console.print("serving every deployment (the runner registers them one by one) ...")
            step = "serving the deployments"
            started = time.time()
            stack.enter_context(serve)
            # "rollway is up" only once the runner takes runs: until then the UI lists some
            # deployments or none, and a run started from it would wait.
            wait_served(serve, server.api_url, deployment=DEPLOYMENT, since=started, timeout_seconds=180)
            _instructions(server, topology, speed, home, validation_url=validation_url, targets=targets,
                          schedules=served_schedules(server.api_url))
            step = "running"
            _watch(server, serve)
    except KeyboardInterrupt as stop:
        name, code = stopped_by(stop)
        console.print(f"stopped ({name}).", markup=False)
        return code
    except ProcessFailed as err:
        # Why it stopped, and the failed child's last words, are diagnostics: standard error.
        # Only that child's: the server's log under a failed serve would push serve's own
        # traceback (on the terminal, just above) off the screen.
        errors.print(f"[red]error:[/red] {escape(str(err))}")
        if err.child is not None and err.child.log_tail():
            errors.print(err.child.log_tail(), markup=False)
        return 1
    except Exception as err:  # noqa: BLE001 - a step that failed is said in one line, not a traceback
        # Moto refusing a call while provisioning, the server gone while the blocks were saved:
        # each ended `rollway up` in a traceback. Everything started is stopped by then (the
        # ExitStack unwound). The traceback goes to a file in the home, named on the error line:
        # kept at debug level only, a bug behind the one line could not be seen at all.
        errors.print(f"[red]error:[/red] {escape(_failed(step, err))}{escape(_traceback_kept(home, err))}")
        return 1
    return 0


FAILURE_LOG = "rollway-up-failure.log"


def _traceback_kept(home: Path, err: Exception) -> str:
    """Writes ``err``'s traceback to the home's failure log (this failure's only) and says where;
    nothing to say when it cannot be written (the error line is what matters)."""
    kept = home / FAILURE_LOG
    try:
        kept.write_text("".join(traceback.format_exception(err)), encoding="utf-8", errors="backslashreplace")
    except OSError:
        return ""
    return f" (its traceback: {kept})"


def _failed(step: str, err: Exception) -> str:
    """One line: the start-up step that failed, why, and that what had started is stopped."""
    cause = str(err).strip().replace("\n", " ") or type(err).__name__
    return f"`rollway up` failed while {step}: {cause} ({type(err).__name__}); everything it had started is stopped"
