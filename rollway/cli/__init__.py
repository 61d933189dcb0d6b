"""The ``rollway`` command. The one part of rollway/ that may reach Prefect (its client, the flows).

Sub-commands import what they need when they run, so ``rollway --help`` is quick and no
command pays for another's imports.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Callable, Literal, NoReturn

from cyclopts import App, CoercionError, CycloptsError, Parameter, RepeatArgumentError, UnknownCommandError

from rollway.cli.blocks import CREDENTIALS_BLOCK, TARGETS_BLOCK
from rollway.cli.finalize import finalize
from rollway.cli.flags import flags_app
from rollway.cli.report import report
from rollway.cli.stderr_log import rollway_log_on_stderr
from rollway.cli.weekly_schedule import WEEKLY_CRON, WEEKLY_TIMEZONE
from rollway.cli.whole import Whole
from rollway.stdout import EXIT_NOT_WRITTEN, EXIT_READER_GONE, escape_unencodable, to_devnull

app = App(name="rollway", help="Progressive delivery for ECS Fargate behind an ALB, on Prefect.")
app.command(flags_app)
app.command(finalize)
app.command(report)


@app.command
def demo(*, speed: float = 120.0, seed: Whole = 7, rps: float = 1000.0) -> int:
    """Run the demo scenarios on the embedded AWS: a healthy canary promoted, two bad ones rolled back.

    Args:
        speed: simulated seconds per wall second.
        seed: traffic simulator seed (same seed, same traffic).
        rps: total requests per simulated second across both versions (at most 10,000).
    """
    from rollway.cli.demo import run_demo
    from rollway.cli.up import HomeUnusable, check_rps, check_speed

    def check() -> None:
        check_speed(speed)
        check_rps(rps, allow_zero=False)  # no traffic, nothing to judge: every scenario would fail

    if refused := _refused(check):
        return refused
    try:
        return run_demo(speed=speed, seed=seed, rps=rps)
    except HomeUnusable as err:  # before the first scenario: its ephemeral API keeps its database there
        print(f"error: {err}", file=sys.stderr)
        return 2


@app.command
def judge(
    replay: Annotated[str, Parameter(allow_leading_hyphen=True)],
    # Keyword-only, as every other command's options: `rollway judge m.jsonl 0.05` took 0.05 as alpha
    # without a word, and `rollway judge m.jsonl before.jsonl` said "Invalid value for ALPHA".
    *,
    spec: str | None = None,
    # None: the spec's, else the default the help names.
    alpha: float | None = None,
    margin: float | None = None,
    # Literal, not str: help lists the two modes ("--mode STR" named none), and a misspelt one is
    # refused by the parser with the choices, before any file is read.
    mode: Literal["two-sample", "one-sample"] | None = None,
    history: Annotated[str | None, Parameter(allow_leading_hyphen=True)] = None,
    guardrails: bool = True,
    slo_error_rate: float | None = None,
    slo_slow_rate: float | None = None,
    metrics: str | None = None,
    margin_ratio: float | None = None,
    min_requests: Whole | None = None,
    stage: Whole | None = None,
) -> int:
    """Dry-run the canary judge on recorded metrics (JSON Lines, one interval per line).

    The replay does not wait out the spec's analysis.metrics_delay_seconds: its records are complete,
    so it may decide one period earlier than a flow would.

    Args:
        replay: the JSON Lines file (- for standard input).
        spec: a RolloutSpec JSON file, as the flows' spec parameter: its analysis settings,
            guardrails and the stage's bake are replayed (checked before any line is read): a pass
            waits for the stage's min_bake_seconds, as in the flows; an option given beside it
            overrides that setting, and a note says so.
        alpha: probability of rolling back a healthy canary (default 0.01).
        margin: the canary passes once its own rate is shown below this, whatever the baseline's
            (0: off; default 0.001).
        mode: two-sample (against the baseline, the default) or one-sample (against the SLO).
        history: JSON Lines of the baseline's intervals before the stage (the flows read an hour),
            which tell the judge how bursty the traffic is (two-sample mode); with --spec, its lines
            must step by the spec's period, end by the stage's start and go back no further than
            analysis.calibration_seconds, as the flows read them.
        guardrails: apply the absolute guardrails (the spec's, else the seed's) on top, as the flows do
            (--no-guardrails: the statistical judge alone, whose false rollbacks alpha bounds).
        slo_error_rate: one-sample mode: the error rate the canary is held to, as the spec's
            analysis.slo_error_rate (default 0.001, 0.1 %).
        slo_slow_rate: one-sample mode: the share of slow requests it is held to, as the spec's
            analysis.slo_slow_rate (default 0.01, 1 %).
        metrics: what the judge compares, as the spec's analysis.metrics: errors, slow or errors,slow
            (default; alpha is split over them).
        margin_ratio: the canary may also pass once shown below this multiple of the baseline's rate
            (one-sample: of the SLO), as analysis.margin_ratio (default 2).
        min_requests: canary requests below which a stage is inconclusive, as analysis.min_requests
            (default 50).
        stage: the canary weight (percent) of the spec's stage the file records (without --spec, of
            the default stages): it is judged as the flows judge that stage, at 100 % one-sample
            against the SLOs (no stable traffic is left to compare with), and with --spec baked as
            that stage bakes (a pass waits for its min_bake_seconds); without it, a stage below
            100 % by the spec's mode.
    """
    from rollway.judge.replay import replay_main, to_stdout

    return to_stdout(lambda out: replay_main(
        replay, alpha=alpha, margin=margin, mode=mode, spec=spec, out=out, err=sys.stderr, history=history,
        guardrails=guardrails, slo_error_rate=slo_error_rate, slo_slow_rate=slo_slow_rate, metrics=metrics,
        margin_ratio=margin_ratio, min_requests=min_requests, stage=stage))


@app.command
def up(*, port: Whole | None = None, speed: float = 60.0, rps: float = 1000.0, seed: Whole = 7, poll_seconds: float = 1.0,
       weekly_cron: str = WEEKLY_CRON, weekly_timezone: str = WEEKLY_TIMEZONE) -> int:
    """Start a Prefect server, the embedded AWS with simulated traffic, and serve every deployment.

    Args:
        port: the Prefect server's port, refused when taken (default: 4200 if free, else any free port).
        speed: simulated seconds per wall second, shared by the simulator and the runs.
        rps: total requests per simulated second across both versions (at most 10,000).
        seed: traffic simulator seed.
        poll_seconds: how often the served deployments look for new runs (at most 300 s).
        weekly_cron: when advance_phase starts the next weekly phase (serve.py's --weekly-cron).
        weekly_timezone: IANA time zone of the weekly cron, and of the weeks the pre-filled spec counts.
    """
    from rollway.cli.up import check_up_options, run_up

    return _refused(lambda: check_up_options(port=port, speed=speed, rps=rps, poll_seconds=poll_seconds,
                                             weekly_cron=weekly_cron, weekly_timezone=weekly_timezone)) or \
        run_up(port=port, speed=speed, rps=rps, seed=seed, poll_seconds=poll_seconds, weekly_cron=weekly_cron,
               weekly_timezone=weekly_timezone)


@app.command
def status(*, targets_block: str | None = TARGETS_BLOCK, credentials_block: str | None = CREDENTIALS_BLOCK,
           history: Whole = 10) -> int:
    """Show the service's newest rollout: phase, stage, weights (ledger and live), owner, transitions.

    Args:
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
        history: how many of the latest transitions to show.
    """
    from rollway.cli.ops import status as run_status

    return run_status(targets_block=targets_block, credentials_block=credentials_block, history=history)


@app.command
def promote(*, approver: str | None = None, comment: str = "", weight: Whole | None = None, flow_run: str | None = None,
            targets_block: str | None = TARGETS_BLOCK, credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Approve the paused run of the service's rollout (as the Resume form in the UI would).

    Args:
        approver: who approves, recorded in the ledger (default: your user name).
        comment: why, recorded in the ledger.
        weight: skip to this later stage's canary weight instead of the next one (refused, nothing
            approved, when the run would refuse it).
        flow_run: the paused flow run's id, when it cannot be found from the ledger.
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.cli.ops import promote as run_promote

    return run_promote(approver=approver, comment=comment, weight=weight, flow_run=_run_id(flow_run),
                       targets_block=targets_block, credentials_block=credentials_block)


@app.command
def hold(*, approver: str | None = None, comment: str = "", flow_run: str | None = None,
         targets_block: str | None = TARGETS_BLOCK, credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Hold the paused run at its weights: it asks again after its next analysis interval (the form's *hold*).

    Args:
        approver: who holds, recorded in the ledger (default: your user name).
        comment: why, recorded in the ledger and shown in the form asked again.
        flow_run: the paused flow run's id, when it cannot be found from the ledger.
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.cli.ops import hold as run_hold

    return run_hold(approver=approver, comment=comment, flow_run=_run_id(flow_run),
                    targets_block=targets_block, credentials_block=credentials_block)


@app.command
def abort(*, approver: str | None = None, reason: str = "aborted from the command line", flow_run: str | None = None,
          wait_seconds: float = 120.0, targets_block: str | None = TARGETS_BLOCK,
          credentials_block: str | None = CREDENTIALS_BLOCK) -> int:
    """Roll the service's rollout back: reject its paused run, or (none paused) run the rollback flow.

    Args:
        approver: who aborts, recorded in the ledger (default: your user name).
        reason: why, recorded in the ledger and the rollback notification.
        flow_run: the paused flow run's id, when it cannot be found from the ledger.
        wait_seconds: how long to wait for the rolled-back run to finish (0: do not wait), or, when no
            run is paused, for the run that owns the rollout to stop before rolling back here (at
            least 1 s; it rolls back anyway after that). At most a day.
        targets_block: saved RollwayTargets block naming the service.
        credentials_block: saved AwsCredentials block of the account.
    """
    from rollway.cli.ops import abort as run_abort

    return run_abort(approver=approver, reason=reason, flow_run=_run_id(flow_run), wait_seconds=wait_seconds,
                     targets_block=targets_block, credentials_block=credentials_block)


def _refused(check: Callable[[], None]) -> int:
    """2 after printing why the options are unusable (``check`` raised ValueError), before
    anything starts; 0 when they are fine."""
    try:
        check()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _run_id(value: str | None):
    from uuid import UUID

    if value is None:  # only a left-out --flow-run: an empty one (an unset variable) is refused below
        return None
    try:
        return UUID(value)
    except ValueError:
        # A run's name ("crimson-fox", as the UI shows it first) is the usual slip: say where the id is.
        print(f"error: --flow-run {value!r} is not a flow run id (a UUID, not the run's name): `rollway status` names "
              "the paused run with its id, or leave --flow-run out to answer the service's paused run", file=sys.stderr)
        raise SystemExit(2) from None


def refuse_usage(err: CycloptsError, program: str = "rollway") -> int:
    """A command line cyclopts could not parse (an unknown option, ``--alpha abc``), said on one
    ``error:`` line like rollway's own refusals, instead of the box several lines high cyclopts
    draws, which a script reading standard error could not take as one message."""
    said = " ".join(str(err).split())  # its messages may wrap
    said += _what_to_do(err)
    chain = getattr(err, "command_chain", None) or ()
    print(f"error: {said} (see `{' '.join((program, *chain, '--help'))}`)", file=sys.stderr)
    return 2


def _what_to_do(err: CycloptsError) -> str:
    """The fix for the slips cyclopts names without one, or ""."""
    if isinstance(err, UnknownCommandError):
        return _command_meant(tuple(getattr(err, "command_chain", None) or ()), list(err.unused_tokens or ()))
    token = getattr(err, "token", None)
    keyword = getattr(token, "keyword", None)
    if isinstance(err, RepeatArgumentError) and keyword:
        # Which of the two was meant is the person's call: neither is taken, the other dropped.
        # An on/off option given both ways is "repeated" under the second spelling only.
        name = keyword.removeprefix("--no-") if keyword.startswith("--no-") else keyword.removeprefix("--")
        if keyword.startswith("--no-") or f"--no-{name}" in sys.argv:
            return f" Give --{name} or --no-{name}, once."
        return " Give it once."
    if isinstance(err, CoercionError) and keyword in (*_PERCENTAGES, *_FRACTIONS):
        from rollway.flags import percent_sign_meant

        meant = percent_sign_meant(getattr(token, "value", None))
        if meant is not None and keyword in _PERCENTAGES:
            # A percentage is written as a number: "50%" is what a person reads on the dashboards.
            return f" Write it without the % sign: {keyword} {meant}."
        if meant is not None:
            # "--alpha 5%" told to write "--alpha 5" was then refused for its range: a rate is a fraction.
            return f" Write it as a fraction: {keyword} {float(meant) / 100:g} for {meant}%."
    return ""


def _command_meant(chain: tuple[str, ...], typed: list[str]) -> str:
    """The command line that does what an unknown command's word asks (``typed``: the word, then
    what followed it), or "". On call, `rollway flags disable F` or `flags percentage F 5` (a
    dashboard's or a runbook's words) were told only the commands there are."""
    import shlex

    if not typed:
        return ""
    # The flag and a share only where they were typed right after the word: a token after an
    # option may be that option's value.
    word, rest = typed[0].lower(), []
    for token in typed[1:3]:
        if token.startswith("-"):
            break
        rest.append(token)
    if chain == ("flags",):
        name = shlex.quote(rest[0]) if rest else "NAME"
        if word in ("show", "describe", "info", "status", "read"):
            return f" `rollway flags get {name}` shows a flag and its latest changes."
        if word in ("disable", "off", "kill"):
            return f" `rollway flags set {name} --no-enabled` turns a flag off."
        if word in ("enable", "on"):
            return f" `rollway flags set {name} --enabled` turns a flag on."
        if word in ("percentage", "percent", "rollout", "ramp"):
            from rollway.flags import percent_sign_meant

            given = rest[1] if len(rest) > 1 else None
            share = percent_sign_meant(given) or (given if given is not None and _share(given) else "N")
            return f" `rollway flags set {name} --percentage {share}` sets the share of users a flag is on for (0 to 100)."
        if word in ("create", "add", "new"):
            return f" `rollway flags set {name} --create` creates a flag (with --enabled, --percentage to set it)."
        return ""
    if not chain and word in ("approve", "resume", "continue"):
        return " `rollway promote` approves the paused run (as the form's approve)."
    if not chain and word in ("reject", "rollback", "roll-back", "cancel"):
        return " `rollway abort` rolls the rollout back (as the form's reject)."
    return ""


def _share(text: str) -> bool:
    """Whether ``text`` is a percentage `flags set` takes (0 to 100), to repeat it in a command line."""
    try:
        return 0 <= float(text) <= 100
    except ValueError:
        return False


# The options given in percent, and those given as a fraction (a probability, a rate): for the
# rest (--rps 50%, --speed 10%) a % sign has no reading to suggest.
_PERCENTAGES = frozenset({"--percentage", "--weight"})
_FRACTIONS = frozenset({"--alpha", "--margin", "--slo-error-rate", "--slo-slow-rate"})


def home_unusable(home: str | os.PathLike[str], err: OSError) -> str:
    """Why ``home`` cannot be made or written (``err``), in words: a file in its place is named
    as such, not as "File exists"."""
    if os.path.exists(home) and not os.path.isdir(home):
        return "it is a file, not a directory"
    return err.strerror or str(err)


# What a write to a full disk, a file over its size limit or a dead device fails with: a flag set
# or a pause answered under `>> oncall.log` did its work, and then ended in a traceback that read
# as its failure.
_NOT_WRITTEN = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _output_lost(err: OSError, what_ran: str, stream: str = "standard output") -> NoReturn:
    """One ``error:`` line saying ``stream`` could not be written and ``what_ran``, exit 74."""
    to_devnull()  # so that the exit's own flush does not fail again
    try:
        print(f"error: {stream} could not be written ({err.strerror or err}): {what_ran}", file=sys.stderr)
    except OSError:  # standard error is the stream lost: the exit code says it
        pass
    sys.exit(EXIT_NOT_WRITTEN)


# Set on an OSError that a write to (or flush of) standard output or error raised: the stream's name.
_STREAM_FAILED = "rollway_stream_failed"


class _Watched:
    """Standard output or error while a command runs: a write or a flush that fails is marked as
    this stream's. A file the command read or wrote on a full or failing disk (a config, a spec,
    a report) fails with the same errors, and was said to be standard output."""

    def __init__(self, stream, name: str) -> None:
        self._stream = stream
        self._name = name

    def write(self, text):
        return self._marked(self._stream.write, text)

    def writelines(self, lines):
        return self._marked(self._stream.writelines, lines)

    def flush(self):
        return self._marked(self._stream.flush)

    def _marked(self, call, *args):
        """``call(*args)``, its OSError marked as this stream's."""
        try:
            return call(*args)
        except OSError as err:
            if getattr(err, _STREAM_FAILED, None) is None:
                setattr(err, _STREAM_FAILED, self._name)
            raise

    def __getattr__(self, name):
        return getattr(self._stream, name)


@contextmanager
def _streams_watched() -> Iterator[None]:
    """sys.stdout and sys.stderr as ``_Watched`` for the block, put back after it."""
    streams = (sys.stdout, sys.stderr)
    sys.stdout = _Watched(streams[0], "standard output")
    if streams[1] is not None:
        sys.stderr = _Watched(streams[1], "standard error")
    try:
        yield
    finally:
        sys.stdout, sys.stderr = streams


def main() -> None:
    if sys.stdout is None:
        # Started with standard output closed (``>&-``): Python gives none at all. A command then
        # did its work (a flag set, a pause answered) with nowhere to say what it did, and ended in
        # an AttributeError traceback at the flush. Nothing is done instead, with the exit code
        # for output that cannot be written (EX_IOERR).
        print("error: standard output is closed: nothing was done, as what it did could not be said; run it with "
              "an output", file=sys.stderr)
        sys.exit(EXIT_NOT_WRITTEN)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The ephemeral API migrates a fresh database on its first start; Prefect's 20-s default
    # is too short for that on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    home = os.environ.get("PREFECT_HOME")
    if home:
        try:
            os.makedirs(home, exist_ok=True)  # Prefect does not create missing parents
        except OSError as err:
            # Every command ended here in a traceback (a PREFECT_HOME naming a file, or a
            # directory this user cannot create), before it had read a single option.
            print(f"error: PREFECT_HOME {home} cannot be used as Prefect's home: {home_unusable(home, err)}; set "
                  "PREFECT_HOME to a directory this user can write", file=sys.stderr)
            sys.exit(2)
    # As standard error already does: `judge --replay` lost its JSON summary to a "—" under an
    # ASCII output encoding.
    escape_unencodable()
    try:
        # rollway's own warnings and errors, one line each on standard error (rollway/cli/stderr_log.py).
        with _streams_watched(), rollway_log_on_stderr():
            try:
                result = app(sys.argv[1:], print_error=False, exit_on_error=False)
            except CycloptsError as err:
                result = refuse_usage(err)
            except SystemExit as stop:  # cyclopts exits by itself after a command: flush first
                result = stop.code
            except OSError as err:
                stream = getattr(err, _STREAM_FAILED, None)
                if isinstance(err, BrokenPipeError) or err.errno not in _NOT_WRITTEN or stream is None:
                    raise
                _output_lost(err, "the command stopped when it could not print, and what it had changed by then "
                                  "stays changed", stream)
        # Inside the try: what a command printed last may fail only here, not at interpreter exit.
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            raise
        except OSError as err:
            _output_lost(err, f"the command ran to its end (exit code {result if isinstance(result, int) else 0}), "
                              "so what it changed stays changed; only what it printed is lost")
    except BrokenPipeError:
        # The reader went away (``| head -1``, a pager quit early): not the command's failure, and
        # no traceback. Standard output is pointed at /dev/null so the exit's own flush cannot
        # fail again.
        to_devnull()
        sys.exit(EXIT_READER_GONE)
    sys.exit(result if isinstance(result, (int, str)) else 0)

