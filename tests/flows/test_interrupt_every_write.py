"""A rollout interrupted at any write can be resumed, or rolled back, from its ledger.

A whole progressive rollout on the fakes (a bound flag, an approval before 50 %, a monitoring
window ending in the decommission) is run once and every write it makes is listed: traffic
shifts, ECS revisions and task counts, flag writes, ledger writes and notices. Then, for each
write, the process "dies" there (an exception no code path catches): once before the write lands,
once after it landed but before its answer was read. From the state it left:

- the user runs the rollout again (the same spec, another run): it must end promoted, all the
  traffic on the new version and the ledger saying so, no stage shifted past without its verdict
  (and the 50 % stage without its approval), the flag at 100 %, and no notice sent twice;
- separately, the user runs `rollway abort`: the traffic must be back on the old version (read
  back), the new version scaled down, the flag off and the rollback's end in the ledger; or, once
  the promotion's window has closed, the abort is refused and production left as it is.

A dead process writes nothing more (no ``finally``, no undo reaches AWS), so a kill before a
write leaves what a kill after the one before it left: each state is made once (``kill_points``).
Nor does anything it did before the kill depend on when it dies: what a run killed after write n
leaves is what the uninterrupted run had once write n landed. So the one uninterrupted run keeps a
copy of its state at each write, and both ways out start from a copy of it, without running the
rollout to each point again (``test_a_run_killed_at_a_write_leaves_what_the_whole_run_had_there``
checks that with runs killed there). A run stopped by a signal, whose exception Prefect runs the
undos for, is tested where that matters, as its canary's pointing lands.
"""
from __future__ import annotations

import copy
import functools
import threading
import time
from collections import Counter
from typing import Callable
from uuid import uuid4

import pytest
from prefect import flow

import rollway.cli.ops as ops
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.environment import Environment
from rollway.fakes import FakeClock, FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see

IMAGE = "webordinary/edit-container:2.0.0"
FEATURE = "use_sqs_architecture"
SPEC = RolloutSpec(
    image=IMAGE,
    stages=[Stage(weight=5, bake_seconds=60), Stage(weight=50, bake_seconds=60, approval=True),
            Stage(weight=100, bake_seconds=60)],
    phases=[WeeklyPhase(name="all stages", weights=(5, 50, 100), decommission=True)],
    flags=[FlagBinding(feature=FEATURE)], monitor_seconds=60)
STABLE_TASKS = 4  # fake_environment's stable service

# What each port writes; everything else it does is a read.
WRITES = {
    "router": {"set_weights"},
    "deployer": {"register_revision", "deregister_revision", "update_service"},
    "flags": {"put"},
    "notifier": {"notify"},
    "ledger": {"create", "acquire", "release", "record", "claim_rollback"},
}


class Killed(BaseException):
    """The process dies: a BaseException, as a real kill's, which Prefect does not retry and no
    code path of rollway catches."""


class Writes:
    """Every write the wrapped ports make, in order; the ``kill_at``-th (1-based) kills the
    process ``when`` "before" it lands, or "after" it landed but before its answer is read.

    A dead process writes nothing more: the ``finally`` blocks and transaction undos its exception
    runs through reach no port (``mortal``). Not ``mortal``: the process is stopped by a signal or
    an interrupt, whose exception Prefect still runs the undos for."""

    def __init__(self, kill_at: int | None = None, when: str = "before", mortal: bool = True,
                 landed: Callable[[int], None] = lambda n: None) -> None:
        self.kill_at, self.when, self.mortal = kill_at, when, mortal
        self.landed = landed  # told, before the first write and once each lands, how many have landed
        self.log: list[str] = []
        self.dead = False

    def write(self, label: str, land):
        if self.dead and self.mortal:
            raise Killed(f"the process is dead: {label} is never sent")
        if not self.log:
            self.landed(0)
        self.log.append(label)
        dies = len(self.log) == self.kill_at
        if dies and self.when == "before":
            self.dead = True
            raise Killed(f"killed before write {self.kill_at}: {label}")
        answer = land()
        if dies:
            self.dead = True
            raise Killed(f"killed after write {self.kill_at} landed: {label}")
        self.landed(len(self.log))
        return answer


def _label(port: str, name: str, args, kwargs) -> str:
    said = f"{port}.{name}"
    if (t := kwargs.get("transition")) is not None:
        said += f" {t.kind}"
    if port == "router" and args:
        said += f" {args[0]}"
    if port == "notifier" and args:
        said += f" {args[0]!r}"
    if port == "deployer" and name == "update_service":
        said += f" {args[0]} {kwargs}"
    return said


def new_env(start: float | None = None) -> Environment:
    env = fake_environment()
    # The rollout clock starts now (or at ``start``): `rollway abort` stamps its entries on real time.
    env.clock = FakeClock(start=time.time() if start is None else start)
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature=FEATURE)])
    return env


def watched(env: Environment, writes: Writes) -> Callable[[], None]:
    """Send the writes of ``env``'s ports through ``writes`` (each port's own methods are
    shadowed on it, so a port that hands back itself, as the router's ``reading`` does, stays
    watched); returns what puts them back."""
    def through(port: str, name: str, method):
        return lambda *args, **kwargs: writes.write(_label(port, name, args, kwargs), lambda: method(*args, **kwargs))

    for port, names in WRITES.items():
        inner = getattr(env, port)
        for name in names & set(dir(inner)):
            setattr(inner, name, through(port, name, getattr(inner, name)))

    return functools.partial(unwatch, env)


def unwatch(env: Environment) -> None:
    """``env``'s ports without what ``watched`` put on them."""
    for port, names in WRITES.items():
        for name in names:
            vars(getattr(env, port)).pop(name, None)


def copied(env: Environment) -> Environment:
    """An independent copy of a fake environment (its ports unwrapped)."""
    ledger_lock = env.ledger._lock
    twin = copy.deepcopy(env, memo={id(ledger_lock): threading.Lock()})
    twin.wall = lambda: twin.clock.now()
    return twin


@flow
def progressive_on(env, spec, approver, owner):
    return run_progressive(env, spec, approver, owner=owner, actor="alice")  # phased, as progressive_rollout by default


@functools.cache
def uninterrupted() -> tuple[tuple[str, ...], tuple[Environment, ...], float]:
    """The writes of a rollout nobody interrupts, in order; its fakes as they were before the
    first write and once each write landed (the n-th: after n writes); and when its clock started."""
    start = time.time()
    env, states = new_env(start), []

    def landed(n: int) -> None:
        assert n == len(states)
        state = copied(env)
        unwatch(state)
        states.append(state)

    writes = Writes(landed=landed)
    watched(env, writes)
    result = progressive_on(env, SPEC, auto_approve("alice"), owner="run-1")
    assert result.outcome == "promoted", result.reason
    return tuple(writes.log), tuple(states), start


def whole_rollout() -> tuple[str, ...]:
    """The writes of a rollout nobody interrupts, in order."""
    return uninterrupted()[0]


def left_by(n: int, when: str) -> Environment:
    """The fakes as a run of SPEC killed at write ``n`` ``when`` (``Writes``) leaves them: the
    uninterrupted run's, before that write or once it landed."""
    return uninterrupted()[1][n - 1 if when == "before" else n]


def kill_points(log: tuple[str, ...]) -> list[tuple[int, str]]:
    """Where the run dies, as (write, "before" or "after"): before the first write, and after
    every write but the lease's.

    A kill before write n+1 leaves what a kill after write n left: only reads come between (a
    dead process writes nothing more), and the clock, which the resume's wait for the dead run's
    lease moves past anyway. So each of those states is made once. A lease renewal (``acquire``)
    changes only when the dead run's lease lapses, which the resume waits out: a kill after it
    leaves what a kill before it left.
    """
    return [(1, "before")] + [(i + 1, "after") for i, label in enumerate(log) if label != "ledger.acquire"]


def killed_at(n: int, when: str, mortal: bool = True, start: float | None = None) -> tuple[Environment, str]:
    """The fakes as a run of SPEC left them, killed at write ``n`` ``when`` (``Writes``), its clock
    started at ``start`` (default: now); and that write."""
    env, writes = new_env(start), Writes(n, when, mortal)
    unwatched = watched(env, writes)
    with pytest.raises(Killed):
        progressive_on(env, SPEC, auto_approve("alice"), owner="run-1")
    unwatched()
    return env, writes.log[n - 1]


def record_of(env):
    return env.ledger.get(env.targets.canary_service)


def resumed_wrong(env: Environment) -> list[str]:
    """What is wrong once the user runs the rollout again (empty: nothing)."""
    # Run again at once: the run waits out the dead run's lease (Prefect says that run has ended).
    sent_before = list(env.notifier.messages)
    try:
        result = progressive_on(env, SPEC, auto_approve("carol"), owner="run-2")
    except Exception as err:  # noqa: BLE001 - the case fails, said with the others
        return [f"the resume failed: {type(err).__name__}: {err}"]
    wrong = []
    record = record_of(env)
    t = env.targets
    if result.outcome != "promoted":
        wrong.append(f"ended {result.outcome}: {result.reason}")
    if env.router.weights != Weights(stable=0, canary=100):
        wrong.append(f"load balancer at {env.router.weights}")
    if record.phase is not RolloutPhase.PROMOTED or record.weights != Weights(stable=0, canary=100):
        wrong.append(f"ledger says {record.phase.value} at {record.weights}")
    # A run killed after its window closed leaves its lease on the finished rollout, which the
    # resume has nothing to do on: it lapses on its own (`rollway status` says so), as any dead
    # run's. The resume's own lease it gives back.
    if record.owner is not None and not (record.owner == "run-1" and record.phase.terminal):
        wrong.append(f"lease left held by {record.owner}")
    kinds = [h.kind for h in record.history]
    if kinds.count("decommission") != 1 or env.deployer.services[t.stable_service].desired != 0:
        wrong.append(f"decommission: {kinds.count('decommission')} recorded, "
                     f"{t.stable_service} at {env.deployer.services[t.stable_service].desired} tasks")
    if kinds.count("promote") != 1:
        wrong.append(f"{kinds.count('promote')} promotions recorded")
    canary = env.deployer.services[t.canary_service]
    if canary.task_definition != record.canary_task_definition or env.deployer.task_definitions.get(
            canary.task_definition, "").split("@")[0].split(":")[-1] != "2.0.0":
        wrong.append(f"{t.canary_service} runs {canary.task_definition}, the ledger says {record.canary_task_definition}")
    flag = env.flags.get(FEATURE)
    if not flag.enabled or flag.percentage != 100:
        wrong.append(f"flag {FEATURE}: enabled={flag.enabled} at {flag.percentage}%")
    wrong += skipped_judgements(record)
    wrong += notices_repeated(sent_before, env.notifier.messages[len(sent_before):])
    return wrong


ASKED = "Rollout waits for a person: "


def notices_repeated(before: list[tuple[str, str]], after: list[tuple[str, str]]) -> list[str]:
    """Notices the resume sent that people had been sent already (by subject), or sent twice itself.

    Except the question of a pause: the dead run asked it in its own flow run, whose Resume form
    nothing reads any more, and a run taking a rollout over ends the wait it recorded
    (``rollway.ledger.unanswered_wait``). The resumed run asks in its own flow run, and tells people
    where to answer now: a notice naming another run."""
    said = Counter(subject for subject, _ in before)
    wrong = []
    for subject, body in after:
        if said[subject] and subject.startswith(ASKED):
            if "(flow run " not in body or any(body == earlier for s, earlier in before if s == subject):
                wrong.append(f"the question asked again names no other flow run: {body}")
        elif said[subject]:
            wrong.append(f"sent twice: {subject}")
        said[subject] += 1
    return wrong


def skipped_judgements(record) -> list[str]:
    """Each shift past a stage needs that stage's passing verdict after its own shift (and the
    shift to 50 % an approval after the 5 % verdict); and each stage is shifted to once."""
    wrong, shifted, judged, approved = [], [], set(), set()
    for h in record.history:
        if h.kind == "shift":
            stage = h.to_stage
            if stage in shifted:
                wrong.append(f"stage {stage} shifted to again")
            if stage > 0 and stage - 1 not in judged:
                wrong.append(f"shifted to stage {stage} without stage {stage - 1}'s verdict")
            if SPEC.stages[stage].approval and stage not in approved:
                wrong.append(f"shifted to stage {stage} without its approval")
            shifted.append(stage)
        elif h.kind == "verdict" and h.from_stage is not None:
            judged.add(h.from_stage)
        elif h.kind == "approve" and h.to_stage is not None:
            approved.add(h.to_stage)
    if shifted != [0, 1, 2]:
        wrong.append(f"stages shifted to: {shifted}")
    if 2 not in judged:
        wrong.append("promoted without the last stage's verdict")
    return wrong


def abort_on(monkeypatch, env: Environment) -> int:
    """`rollway abort` run on ``env`` (no run of it paused); its exit code."""
    hooks_and_flows_see(monkeypatch, env)
    service = ops.Service(targets=env.targets, targets_block=f"crash-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    return ops.abort(approver="erin", reason="errors after the crash", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)


def aborted_wrong(monkeypatch, capsys, env: Environment) -> list[str]:
    """What is wrong once the user runs `rollway abort` (empty: nothing)."""
    before = record_of(env)
    closed = before is not None and before.phase is RolloutPhase.PROMOTED and before.last_transition("decommission")
    weights_before = env.router.weights
    capsys.readouterr()
    try:
        code = abort_on(monkeypatch, env)
    except Exception as err:  # noqa: BLE001 - the case fails, said with the others
        return [f"abort raised {type(err).__name__}: {err}"]
    out = capsys.readouterr()
    said = " ".join((out.out + out.err).split())
    if before is None or closed:
        # Nothing recorded yet, or production since the window closed (`rollway abort` refuses
        # it, and says how to go back by hand): refused, and nothing moved.
        refused = code == 1 and "nothing to abort" in said and env.router.weights == weights_before
        return [] if refused else [f"abort of {'nothing' if before is None else 'a closed promotion'} exited {code}, "
                                   f"weights {env.router.weights}: {said}"]
    wrong = [f"exit {code}: {said}"] if code != 0 else []
    if "load balancer now" not in said and "rolled back" not in said:
        wrong.append(f"said: {said}")
    return wrong + rolled_back_wrong(env)


def rolled_back_wrong(env: Environment) -> list[str]:
    """What of a rollback's end is missing from ``env`` (empty: nothing)."""
    t, wrong = env.targets, []
    if env.router.weights != Weights(stable=100, canary=0):
        wrong.append(f"load balancer at {env.router.weights}")
    if env.deployer.services[t.canary_service].desired != 0:
        wrong.append(f"{t.canary_service} at {env.deployer.services[t.canary_service].desired} tasks")
    if env.deployer.services[t.stable_service].desired < STABLE_TASKS:
        wrong.append(f"{t.stable_service} at {env.deployer.services[t.stable_service].desired} tasks")
    flag = env.flags.get(FEATURE)
    if flag.enabled:
        wrong.append(f"flag {FEATURE} left on at {flag.percentage}%")
    record = record_of(env)
    if record.phase is not RolloutPhase.ROLLED_BACK or record.history[-1].kind != "rollback":
        wrong.append(f"ledger: {record.phase.value}, last entry {record.history[-1].kind}")
    return wrong


def every_case(way) -> list[str]:
    wrong, log = [], whole_rollout()
    for n, when in kill_points(log):
        wrong += [f"killed {when} write {n} ({log[n - 1]}): {problem}" for problem in way(copied(left_by(n, when)))]
    return wrong


def fakes_state(env: Environment) -> dict[str, object]:
    """What ``env``'s fakes hold that a resume or an abort reads (not the calls they logged), the
    rollout's id and the Prefect flow runs that wrote it said as placeholders: each run draws its own."""
    names: dict[str, str] = {}
    for record in (r for records in env.ledger._rollouts.values() for r in records):
        names[record.rollout_id] = "<rollout>"
        for run in {t.run for t in record.history if t.run}:
            names[run] = names[run.split(" (")[0]] = "<flow run>"

    def said(value) -> str:
        text = repr(value)
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, names[name])
        return text

    def data(port) -> dict[str, object]:
        return {name: said(value) for name, value in sorted(vars(port).items())
                if name not in ("calls", "_lock", "healthy", "router", "behaviour") and not callable(value)}

    return {port: data(getattr(env, port))
            for port in ("router", "deployer", "flags", "notifier", "ledger", "metrics", "clock")}


def test_a_run_killed_at_a_write_leaves_what_the_whole_run_had_there():
    """What the other tests start from (``left_by``) is what a run killed there leaves: before
    the first write, and after the shift to 50 % landed."""
    log = whole_rollout()
    at_half = [i + 1 for i, label in enumerate(log) if label == "ledger.record shift"][1]
    for n, when in ((1, "before"), (at_half, "after")):
        dead, write = killed_at(n, when, start=uninterrupted()[2])  # the same clock: the same times recorded
        assert write == log[n - 1]
        assert fakes_state(dead) == fakes_state(left_by(n, when)), (n, when)


def test_the_rollout_makes_every_kind_of_write():
    log = whole_rollout()
    said = "\n".join(log)
    for kind in ("ledger.create", "router.set_weights", "deployer.register_revision", "deployer.update_service",
                 "flags.put", "notifier.notify", "ledger.record shift", "ledger.record verdict",
                 "ledger.record approve", "ledger.record promote", "ledger.record decommission", "ledger.release"):
        assert kind in said, said
    assert len(kill_points(log)) >= 30, said


def test_a_rollout_killed_at_any_write_is_resumed_to_its_promotion():
    wrong = every_case(resumed_wrong)
    assert not wrong, "\n".join(wrong)


def test_a_rollout_killed_at_any_write_is_rolled_back_by_rollway_abort(monkeypatch, capsys):
    def aborted(env):
        with monkeypatch.context() as patch:
            return aborted_wrong(patch, capsys, env)

    wrong = every_case(aborted)
    assert not wrong, "\n".join(wrong)


def test_an_abort_killed_at_any_write_is_finished_by_the_next_abort(monkeypatch, capsys):
    """The rollout died at 50 %; `rollway abort` dies at each of its own writes in turn, and the
    same command run again finishes the rollback, paging people once (twice only when the first
    died between SNS taking its page and the ledger recording it, the second page saying so)."""
    log = whole_rollout()
    at_half = [i + 1 for i, label in enumerate(log) if label == "ledger.record shift"][1]
    dead = left_by(at_half, "after")
    assert dead.router.weights == Weights(stable=50, canary=50)

    def rollback_pages(env):
        return [body for subject, body in env.notifier.messages if subject.startswith("Rollback")]

    clean, writes = copied(dead), Writes()
    watched(clean, writes)
    with monkeypatch.context() as patch:
        assert abort_on(patch, clean) == 0
    abort_writes = tuple(writes.log)
    assert "router.set_weights 100/0" in abort_writes and len(rollback_pages(clean)) == 1, abort_writes
    wrong = []
    points = [(1, "before")] + [(i + 1, "after") for i, label in enumerate(abort_writes)
                                if label not in ("ledger.acquire", "ledger.claim_rollback")]
    for n, when in points:
        env, writes = copied(dead), Writes(n, when)
        unwatched = watched(env, writes)
        with monkeypatch.context() as patch, pytest.raises(Killed):
            abort_on(patch, env)
        unwatched()
        write = writes.log[n - 1]
        paged_then = len(rollback_pages(env))
        if record_of(env).phase is RolloutPhase.ROLLED_BACK:
            # Killed once the end was recorded: the rollback is over, and a second abort says so.
            capsys.readouterr()
            with monkeypatch.context() as patch:
                code = abort_on(patch, env)
            said = capsys.readouterr().err
            problems = rolled_back_wrong(env) + ([] if code == 1 and "nothing to abort" in said else [
                f"the second abort exited {code}: {said}"])
        else:
            with monkeypatch.context() as patch:
                problems = aborted_wrong(patch, capsys, env)
        pages = rollback_pages(env)
        repeated = write.startswith("notifier.notify 'Rollback")
        if len(pages) != 1 + repeated:
            problems.append(f"{len(pages)} rollback pages ({paged_then} before the second abort)")
        elif repeated and not pages[1].startswith("This notice may repeat one sent at "):
            problems.append(f"the second page does not say it may repeat the first: {pages[1][:200]}")
        wrong += [f"abort killed {when} its write {n} ({write}): {p}" for p in problems]
    assert not wrong, "\n".join(wrong)


def test_a_run_stopped_as_its_canary_pointing_lands_leaves_the_revision_it_runs_registered():
    """A signal or an interrupt stops the run as ECS takes the canary's UpdateService; Prefect runs
    the deploy's undos all the same. The pointing's undo took the write for never sent and left the
    canary on the new revision, while the registration's undo deregistered it: the canary ran a
    revision ECS reports INACTIVE (and refuses to point a service at later), which the resume
    recorded as the rollout's. The fake deployer forgets a deregistered revision: the resume failed."""
    log = whole_rollout()
    pointing = next(i + 1 for i, label in enumerate(log)
                    if label.startswith("deployer.update_service") and "'task_definition': 'arn:" in label)
    dead, _ = killed_at(pointing, "after", mortal=False)
    canary = dead.deployer.services[dead.targets.canary_service]
    assert canary.task_definition in dead.deployer.task_definitions, "the revision the canary runs was deregistered"
    wrong = resumed_wrong(copied(dead))
    assert not wrong, "\n".join(wrong)
