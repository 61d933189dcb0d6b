"""progressive_rollout's logic on fakes: ledger, phases, locks, drift, resume after a kill."""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import threading

import pytest
from prefect import flow

from flows.canary import RolloutRefused
from flows.progressive import DriftDetected, PhaseRefused, advance, run_progressive
from flows.rollback import rollback_recorded
from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.ledger import LockHeld, RolloutEnded, RolloutInProgress
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
WEEK = 7 * 86400


def env_with_ledger(**kwargs):
    env = fake_environment(**kwargs)
    env.ledger = FakeLedger()
    return env


def full_spec() -> RolloutSpec:
    # Default stages, approvals and weekly phases (5 | 25, 50 | 75, 100 + decommission);
    # short bakes and monitoring window keep the test quick.
    default = RolloutSpec(image=IMAGE)
    return default.model_copy(update={
        "stages": tuple(s.model_copy(update={"bake_seconds": 180}) for s in default.stages),
        "monitor_seconds": 300,
    })


@flow
def progressive_on(env, spec, approver, owner="run-1", phased=False, adopt=False, finished=None):
    """``finished``: whether the holder's run has ended, as Prefect would say (default: every one has)."""
    kwargs = {"owner_finished": finished} if finished is not None else {}
    return run_progressive(env, spec, approver, owner=owner, actor="alice", phased=phased, adopt_live_weights=adopt,
                           **kwargs)


@flow
def advance_on(env, approver, owner):
    return advance(env, approver, owner=owner)


def kinds(env) -> list[str]:
    return [t.kind for t in env.ledger.get(env.targets.canary_service).history]


def shifts(env) -> list[int]:
    record = env.ledger.get(env.targets.canary_service)
    return [t.to_weights.canary for t in record.history if t.kind == "shift"]


def test_full_rollout_records_every_transition():
    env = env_with_ledger()
    approve = ApprovalAnswer(action="approve", approver="alice", comment="ok")
    result = progressive_on(env, full_spec(), scripted(approve, approve))
    assert result.outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED and record.weights == Weights(stable=0, canary=100)
    assert shifts(env) == [5, 25, 50, 75, 100]
    approvals = [t for t in record.history if t.kind == "approve"]
    assert [(t.actor, t.to_stage) for t in approvals] == [("alice", 1), ("alice", 4)]
    assert kinds(env)[:3] == ["start", "deploy", "phase"]
    # Promoted, watched for the monitoring window, then the old service decommissioned.
    assert kinds(env)[-3:] == ["promote", "decommission", "decommission-paged"]
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert record.owner is None  # released


def test_rejection_rolls_back_and_is_recorded():
    env = env_with_ledger()
    result = progressive_on(env, full_spec(), scripted(ApprovalAnswer(action="reject", approver="bob", comment="no")))
    assert result.outcome == "rolled_back"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert kinds(env)[-5:] == ["reject", "rollback-start", "notifying", "notified", "rollback"]
    assert env.router.weights == Weights(stable=100, canary=0)


def test_weekly_phases_advance_once_a_week_and_only_after_a_pass():
    env = env_with_ledger()
    first = progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    assert first.outcome == "holding" and env.router.weights.canary == 5
    # Same week: nothing changes, however often the schedule fires.
    assert advance_on(env, auto_approve(), "cron-1") is None
    assert advance_on(env, auto_approve(), "cron-2") is None
    assert shifts(env) == [5]
    env.clock.sleep(WEEK)
    second = advance_on(env, auto_approve("carol"), "cron-3")
    assert second.outcome == "holding" and shifts(env) == [5, 25, 50]
    env.clock.sleep(WEEK)
    third = advance_on(env, auto_approve("carol"), "cron-4")
    assert third.outcome == "promoted" and shifts(env) == [5, 25, 50, 75, 100]
    env.clock.sleep(WEEK)
    assert advance_on(env, auto_approve(), "cron-5") is None  # finished


def test_refuses_to_advance_when_the_phase_did_not_pass():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    service = env.targets.canary_service
    record = env.ledger.get(service)
    env.ledger.record(service, owner=None, now=env.clock.now(),
                      transition=record.history[-1].model_copy(update={"kind": "hold"}), weekly_phase_passed=False)
    env.clock.sleep(WEEK)
    with pytest.raises(PhaseRefused, match="has not passed"):
        advance_on(env, auto_approve(), "cron")
    assert shifts(env) == [5]


def test_a_phase_that_did_not_pass_is_named_in_the_refusal_as_the_plan_names_it():
    """The refusal said "phase 1 has not passed" while the summary, status and SNS name the
    phase as the plan does ("pilot" here, "week 1" by default)."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 50, 100)],
                       phases=[WeeklyPhase(name="pilot", weights=(5,)), WeeklyPhase(name="half", weights=(50,)),
                               WeeklyPhase(name="all", weights=(100,))], monitor_seconds=0)
    env = env_with_ledger()
    progressive_on(env, spec, auto_approve("alice"), phased=True)
    service = env.targets.canary_service
    record = env.ledger.get(service)
    env.ledger.record(service, owner=None, now=env.clock.now(),
                      transition=record.history[-1].model_copy(update={"kind": "hold"}), weekly_phase_passed=False)
    env.clock.sleep(WEEK)
    with pytest.raises(PhaseRefused, match=r"pilot has not passed \(.*\); approve or roll it back first") as refused:
        advance_on(env, auto_approve(), "cron")
    assert "phase 1" not in str(refused.value), refused.value
    assert shifts(env) == [5]


@flow
def advance_watching(env, approver, owner, finished):
    return advance(env, approver, owner=owner, owner_finished=finished)


def _phase_two_killed_while_25_percent_bakes():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    env.clock.sleep(WEEK)
    # The latency check at the phase's start is one read more before the 25% stage's.
    real = dies_at_observe(env, 4, "the node running the phase is lost while 25% bakes")
    with pytest.raises(Killed):
        advance_on(env, auto_approve("carol"), "cron-1")
    env.metrics = real
    record = env.ledger.get(env.targets.canary_service)
    assert (record.phase, record.weights.canary, record.weekly_phase_index) == (RolloutPhase.PROGRESSING, 25, 1)
    return env


def test_the_schedule_resumes_a_phase_whose_run_died():
    env = _phase_two_killed_while_25_percent_bakes()
    env.clock.sleep(601)  # the dead run's lease runs out
    result = advance_watching(env, auto_approve("carol"), "cron-2", lambda owner: True)
    assert result is not None and result.outcome == "holding"
    assert shifts(env) == [5, 25, 50]
    assert env.ledger.get(env.targets.canary_service).weekly_phase_passed


def test_the_schedule_leaves_a_phase_whose_run_is_alive_but_silent():
    """A run paused for an approval does not renew its lease; it is not dead for that."""
    env = _phase_two_killed_while_25_percent_bakes()
    env.clock.sleep(601)
    asked = []
    assert advance_watching(env, auto_approve(), "cron-2", lambda owner: asked.append(owner) or False) is None
    assert asked == ["cron-1"] and shifts(env) == [5, 25]


def test_drift_at_a_phase_boundary_is_refused_before_the_week_is_used():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    env.router.weights = Weights(stable=90, canary=10)  # moved by hand between phases
    env.clock.sleep(WEEK)
    with pytest.raises(DriftDetected):
        advance_on(env, auto_approve(), "cron-1")
    record = env.ledger.get(env.targets.canary_service)
    assert (record.weekly_phase_index, record.owner) == (0, None), "the next phase was not recorded as started"
    env.router.weights = Weights(stable=95, canary=5)  # an operator puts the weights back
    result = advance_on(env, auto_approve("carol"), "cron-2")
    assert result.outcome == "holding" and shifts(env) == [5, 25, 50]


def test_second_rollout_of_the_service_is_refused():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    other = RolloutSpec(image="webordinary/edit-container:3.0.0")
    with pytest.raises(RolloutInProgress, match="rolling out"):
        progressive_on(env, other, auto_approve(), owner="run-2")


def test_a_live_lease_locks_out_a_second_run():
    """The holder's run is alive (Prefect says so): refused at once, without waiting for its lease."""
    env = env_with_ledger()
    service = env.targets.canary_service
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    env.ledger.acquire(service, owner="run-1", now=env.clock.now(), lease_seconds=600)
    before = env.clock.now()
    with pytest.raises(RolloutInProgress, match="driven by run-1, whose run has not ended") as refused:
        progressive_on(env, full_spec(), auto_approve(), owner="run-2", finished=lambda owner: False)
    # A run left Cancelling with no process cannot be cancelled again: the refusal says what works.
    assert "should that process be gone, nothing ends it, and `rollway abort` rolls the rollout back" in str(
        refused.value), refused.value
    assert env.clock.now() == before and shifts(env) == [5]


def test_drift_is_refused_unless_adopted():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    env.router.weights = Weights(stable=60, canary=40)  # someone changed the ALB by hand
    with pytest.raises(DriftDetected, match="holds 60/40"):
        progressive_on(env, full_spec(), auto_approve(), owner="run-2")
    result = progressive_on(env, full_spec(), auto_approve(), owner="run-3", adopt=True)
    assert result.outcome == "promoted"
    assert "adopt" in kinds(env)
    assert shifts(env) == [5, 50, 75, 100]


def test_adopted_weights_bring_the_bound_flags_with_them():
    """The adopted stage used to bake, and the rollout hold for its week, with the traffic at
    50 % and the flag still at week 1's 5 %."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    feature = "use_sqs_architecture"
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 50, 100)],
                       phases=[WeeklyPhase(name="w1", weights=(5,)), WeeklyPhase(name="w2", weights=(50,)),
                               WeeklyPhase(name="w3", weights=(100,))],
                       flags=[FlagBinding(feature=feature)], monitor_seconds=0)
    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature=feature)])
    progressive_on(env, spec, auto_approve(), phased=True)
    assert env.flags.get(feature).percentage == 5
    env.router.weights = Weights(stable=50, canary=50)  # moved by hand
    baked_with: list[tuple[int, float]] = []
    real = env.metrics
    env.metrics = Intercept(real, lambda name, args, kwargs: name == "observe" and baked_with.append(
        (env.router.weights.canary, env.flags.get(feature).percentage)))
    progressive_on(env, spec, auto_approve(), owner="run-2", phased=True, adopt=True)
    assert baked_with and set(baked_with) == {(50, 50.0)}, sorted(set(baked_with))
    assert "flag" in kinds(env)[kinds(env).index("adopt"):], "the flag's move is in the ledger"


class Killed(BaseException):
    """Stands in for the process dying at a given port call.

    A BaseException, like the KeyboardInterrupt or SystemExit of a real kill: Prefect does
    not retry it, and no code path of rollway catches it.
    """


def dies_recording_the_shift_to(weight: int):
    """An Intercept hook: the process dies after the load balancer moved to ``weight`` %, before
    the ledger recorded the shift."""

    def hook(name, args, kwargs):
        t = kwargs.get("transition")
        if name == "record" and t is not None and t.kind == "shift" and t.to_weights.canary == weight:
            raise Killed(f"dies after the load balancer moved to {weight}%, before the ledger heard of it")

    return hook


def killed_while_baking(env, weight: int, approver, **run) -> None:
    """Run the full spec with ``progressive_on`` until the node is lost while ``weight`` % bakes
    (at that stage's first read of the metrics)."""
    real = env.metrics

    def dies(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == weight:
            raise Killed(f"the node running the rollout is lost while {weight}% bakes")

    env.metrics = Intercept(real, dies)
    try:
        with pytest.raises(Killed):
            progressive_on(env, full_spec(), approver, **run)
    finally:
        env.metrics = real


class KillAt:
    """Wraps a port; the n-th call (over all wrapped ports) and every one after it raise Killed.

    A dead process makes no more calls: no clean-up in a ``finally`` reaches AWS, and a lease it
    held stays until it expires.
    """

    def __init__(self, inner, counter):
        self._inner, self._counter = inner, counter

    def __getattr__(self, name):
        if name.startswith("_"):  # copy/pickle probes must not recurse through the wrapper
            raise AttributeError(name)
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._counter["n"] += 1
            self._counter.setdefault("log", []).append(name)
            if 0 < self._counter["kill_at"] <= self._counter["n"]:
                raise Killed(f"killed at call {self._counter['kill_at']}: {name}")
            return attr(*args, **kwargs)

        return call


def _killed_spec() -> RolloutSpec:
    # A 5-minute monitoring window: its looks repeat the kinds of call a longer one makes, and
    # each look costs Prefect task runs in every one of the test's ~30 runs.
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)],
                       monitor_seconds=300)


def _run_with_kill(kill_at: int):
    env = env_with_ledger()
    counter = {"n": 0, "kill_at": kill_at}
    real = (env.router, env.deployer, env.ledger)
    env.router, env.deployer, env.ledger = (KillAt(p, counter) for p in real)
    spec = _killed_spec()
    killed = False
    try:
        progressive_on(env, spec, auto_approve(), owner="run-1")
    except Killed:
        killed = True
    env.router, env.deployer, env.ledger = real
    return env, spec, killed, counter.get("log", [])


def _copy_of(env, ports: tuple) -> object:
    """A deep copy of ``env`` with ``ports`` (router, deployer, ledger) as its ports: every fake's
    state, on a clock of its own."""
    router, deployer, ledger = ports
    live = dataclasses.replace(env, router=router, deployer=deployer, ledger=ledger)
    copied = copy.deepcopy(live, {id(ledger._lock): threading.Lock()})
    copied.wall = lambda: copied.clock.now()  # the original's lambda reads the original's clock
    return copied


def _states_before(spec: RolloutSpec, approver, wanted):
    """One whole run of ``spec``, with a copy of every fake taken before each of its calls to the
    load balancer, the services or the ledger that ``wanted(calls, kwargs)`` picks (``calls``: the
    names of the calls so far, this one last).

    ``states[k]`` is what a process that died at call ``k`` leaves: the run is the same up to that
    call, and a dead process makes no further call (no clean-up in a ``finally``, no release of
    its claim). A copy per kill point costs one run, where replaying the rollout up to each point
    cost one run per point.
    """
    env = env_with_ledger()
    real = (env.router, env.deployer, env.ledger)
    states, calls = {}, []

    def before(name, args, kwargs):
        calls.append(name)
        if wanted(calls, kwargs):
            states[len(calls)] = _copy_of(env, real)

    env.router, env.deployer, env.ledger = (Intercept(p, before) for p in real)
    result = progressive_on(env, spec, approver, owner="run-1")
    env.router, env.deployer, env.ledger = real
    return env, result, states, calls


def _states_before_each_step(spec: RolloutSpec, approver):
    """``_states_before`` each call that ``step_boundaries`` names."""
    return _states_before(spec, approver, lambda calls, kwargs: step_boundaries(calls)[-1:] == [len(calls)])


def step_boundaries(calls: list[str]) -> list[int]:
    """1-based positions of every write and of the first call of each kind of read.

    A kill just before a write is the dangerous kind (the step before it happened, this one
    did not); reads are repeated on every stage, so their first occurrence stands for all.
    """
    writes = {"set_weights", "update_service", "register_revision", "create", "record", "release"}
    return [i + 1 for i, name in enumerate(calls) if name in writes or name not in calls[:i]]


def test_resume_after_a_kill_at_every_step():
    spec = _killed_spec()
    _, first, states, calls = _states_before_each_step(spec, auto_approve())
    assert first.outcome == "promoted" and len(calls) > 20
    assert list(states) == step_boundaries(calls)
    for kill_at in step_boundaries(calls):
        env = states[kill_at]  # the run died at call ``kill_at``
        env.clock.sleep(601)  # the dead run's lease runs out
        result = progressive_on(env, spec, auto_approve(), owner="run-2")
        assert result.outcome == "promoted", (kill_at, result.reason)
        assert env.router.weights == Weights(stable=0, canary=100)
        assert shifts(env) == [5, 50, 100], (kill_at, kinds(env))


def _reject(who: str) -> ApprovalAnswer:
    return ApprovalAnswer(action="reject", approver=who, comment="error budget")


def _rejected_spec() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=50, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120)])


def _rejected_run_with_kill(kill_at: int):
    """The 5% stage passes, the person rejects at the pause before 50%, the run dies at call ``kill_at``."""
    env = env_with_ledger()
    counter = {"n": 0, "kill_at": kill_at}
    real = (env.router, env.deployer, env.ledger)
    env.router, env.deployer, env.ledger = (KillAt(p, counter) for p in real)
    spec = _rejected_spec()
    killed = False
    try:
        progressive_on(env, spec, scripted(_reject("bob")), owner="run-1")
    except Killed:
        killed = True
    env.router, env.deployer, env.ledger = real
    return env, spec, killed, counter.get("log", [])


def _from_the_rejection():
    """A ``wanted`` of ``_states_before``: the ledger write of the rejection and every call after it."""
    rejected = []

    def wanted(calls, kwargs):
        transition = kwargs.get("transition")
        if calls[-1] == "record" and transition is not None and transition.kind == "reject":
            rejected.append(len(calls))
        return bool(rejected)

    return wanted


@functools.cache
def _rejected_run_calls() -> tuple[str, ...]:
    """The port calls of the rejected run left uninterrupted: the same every time (fakes, a fake
    clock), so made once per pytest worker, not once per test that looks for a kill point in it."""
    return tuple(_rejected_run_with_kill(kill_at=0)[3])


def test_a_rollback_killed_at_any_step_is_finished_on_resume():
    spec = _rejected_spec()
    env, first, states, calls = _states_before(spec, scripted(_reject("bob")), _from_the_rejection())
    assert first.outcome == "rolled_back"
    assert kinds(env)[-5:] == ["reject", "rollback-start", "notifying", "notified", "rollback"], (
        "intent is recorded before acting")
    # Kills before the answer are the promotion path's (test_resume_after_a_kill_at_every_step);
    # from the recorded rejection on, every call is a point the run may die at.
    records = [i for i, name in enumerate(calls) if name == "record"]
    # The last five records: the rejection, the intent, the notice being sent, the notice sent and the
    # rollback's end.
    notice_write = records[-2] + 1  # killed there, the notice went out but is not recorded
    assert list(states) == list(range(records[-5] + 1, len(calls) + 1))
    after_intent = claimed = 0
    for kill_at, env in states.items():  # the run died at call ``kill_at``
        record = env.ledger.get(env.targets.canary_service)
        pending = record.phase is RolloutPhase.ROLLING_BACK
        held = record.rollback_holder  # a dead run's claim on the rollback stays until it lapses
        after_intent += pending
        claimed += bool(pending and held)
        env.clock.sleep(601)  # the dead run's lease runs out
        env.router.calls.clear()
        result = progressive_on(env, spec, scripted(_reject("carol")), owner="run-2")
        assert result.outcome == "rolled_back", (kill_at, result.reason)
        assert env.router.weights == Weights(stable=100, canary=0), kill_at
        assert env.deployer.describe(env.targets.canary_service).desired == 0, kill_at
        record = env.ledger.get(env.targets.canary_service)
        assert record.phase is RolloutPhase.ROLLED_BACK, (kill_at, kinds(env))
        if pending and held:
            # The resume took the dead run's lapsed claim over, and the history says so.
            took = [t.comment for t in record.history if t.kind == "takeover"]
            assert len(took) == 1 and took[0].startswith(f"took the rollback over from {held},"), (kill_at, took)
        if pending:
            # The resumed run only finishes the rollback: it never moves traffic toward the canary.
            assert "interrupted" in result.reason and "bob" in result.reason, result.reason
            raised = [c for c in env.router.calls if c.startswith("set_weights") and c != "set_weights 100/0"]
            assert raised == [], (kill_at, env.router.calls)
            assert kinds(env).count("rollback") == 1 and kinds(env)[-1] == "rollback"
            # People are paged once, whichever step the first run died at: a notice it sent and
            # recorded is not sent again. Only a death between the publish and its record pages twice.
            pages = [m for m in env.notifier.messages if m[0].startswith("Rollback:")]
            assert len(pages) == (2 if kill_at == notice_write else 1), (kill_at, calls[kill_at - 1], pages)
            # The second page says it may repeat the first, which reads as any first page does.
            assert [p.startswith("This notice may repeat one sent at ") for _, p in pages] == (
                [False, True] if kill_at == notice_write else [False]), (kill_at, pages)
    assert after_intent >= 3, "kills fell inside the rollback, between its intent and its record"
    assert claimed == after_intent, "a run that died inside the rollback left its claim to lapse, unreleased"


def test_advance_finishes_an_interrupted_rollback_instead_of_refusing():
    # Kill right after the intent is written: the first write after the reject.
    env, spec, killed, _ = _rejected_run_with_kill(_first_call_after_intent(_rejected_run_calls()))
    assert killed and env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
    env.clock.sleep(WEEK)
    result = advance_on(env, scripted(), owner="schedule-1")
    assert result is not None and result.outcome == "rolled_back"
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_new_image_first_finishes_the_interrupted_rollback_of_the_old_one():
    env, spec, killed, _ = _rejected_run_with_kill(_first_call_after_intent(_rejected_run_calls()))
    assert killed and env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
    env.clock.sleep(601)
    newer = spec.model_copy(update={"image": "webordinary/edit-container:2.0.1"})
    result = progressive_on(env, newer, auto_approve(), owner="run-2")
    assert result.outcome == "promoted" and result.image == newer.image
    rollbacks = [m for m in env.notifier.messages if m[0].startswith("Rollback")]
    assert len(rollbacks) == 1 and "interrupted" in rollbacks[0][1], "the old rollback was finished first"
    assert env.ledger.get(env.targets.canary_service).image == newer.image


def _first_call_after_intent(calls: list[str]) -> int:
    """1-based position of the call just after the ledger write that recorded the rollback's intent."""
    records = [i for i, name in enumerate(calls) if name == "record"]
    # The last four records are the intent, the notice being sent, the notice sent and the completion; kill on
    # the call after the intent.
    return records[-4] + 2


def monitored_spec() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=3600,
                       phases=[WeeklyPhase(name="all stages", weights=(5, 100), decommission=True)])


def mortal(inner, process: dict, kill_after: int | None = None):
    """Wraps a port of one process; once the process is dead, every call raises Killed.

    ``kill_after``: this port's call that kills the process. A killed process makes no more
    calls, so no clean-up in a ``finally`` reaches AWS and a lease it held stays until it expires.
    """
    calls = []

    def before(name, args, kwargs):
        calls.append(name)
        if len(calls) == kill_after:
            process["dead"] = True
        if process.get("dead"):
            raise Killed(f"process killed ({name})")

    return Intercept(inner, before)


@functools.cache
def _checks_in_full_run(spec_json: str) -> int:
    """The metrics reads of a whole run of the spec on the fakes (a fake clock, fixed traffic):
    the same every time, so it is counted once per spec in a pytest worker, not once per test
    (each count ran a whole hour-long window, about 2 s)."""
    env = env_with_ledger()
    progressive_on(env, RolloutSpec.model_validate_json(spec_json), auto_approve())
    return env.metrics.calls


def _killed_while_monitoring(spec: RolloutSpec | None = None):
    """A rollout promoted and killed twenty checks before its monitoring window ends."""
    spec = spec or monitored_spec()
    checks_in_full_run = _checks_in_full_run(spec.model_dump_json())

    env = env_with_ledger()
    process: dict = {}
    real = (env.metrics, env.ledger)
    env.metrics = mortal(real[0], process, kill_after=checks_in_full_run - 20)
    env.ledger = mortal(real[1], process)
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    env.metrics, env.ledger = real
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED
    assert record.owner == "run-1", "the monitoring run held the lease when it died"
    assert env.deployer.services[env.targets.stable_service].desired > 0, "killed before the decommission"
    return env, spec


def test_a_second_run_is_refused_at_once_while_a_live_monitoring_runs_lease_lasts():
    """Prefect says the watching run is alive (its process stopped only as far as this test is
    concerned): refused at once, its lease not waited for."""
    env, spec = _killed_while_monitoring()
    before, started = env.metrics.calls, env.clock.now()
    with pytest.raises(LockHeld):
        progressive_on(env, spec, auto_approve(), owner="run-2", finished=lambda owner: False)
    assert env.metrics.calls == before, "the refused run watched nothing"
    assert env.clock.now() == started, "it waited for a live run's lease"
    assert env.deployer.services[env.targets.stable_service].desired > 0


def test_a_second_run_waits_out_an_ended_monitoring_runs_lease_and_finishes_the_window():
    """Prefect says the watching run has ended: the second run waits for its lease (it used to
    fail at once with LockHeld), then watches what is left of the window and decommissions."""
    env, spec = _killed_while_monitoring()
    dead = env.ledger.get(env.targets.canary_service)
    result = progressive_on(env, spec, auto_approve(), owner="run-2", finished=lambda owner: True)
    assert result.outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    assert env.deployer.services[env.targets.stable_service].desired == 0
    record = env.ledger.get(env.targets.canary_service)
    assert record.owner is None and record.history[-1].at > dead.lease_expires


def test_a_run_killed_while_monitoring_is_resumed_for_the_rest_of_the_window():
    env, spec = _killed_while_monitoring()
    env.clock.sleep(601)  # the dead run's lease runs out
    before, started = env.metrics.calls, env.clock.now()
    result = progressive_on(env, spec, auto_approve(), owner="run-2")
    assert result.outcome == "promoted"
    assert kinds(env)[-2:] == ["decommission", "decommission-paged"]
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert env.ledger.get(env.targets.canary_service).owner is None, "the lease was released"
    # Only what was left of the hour (20 checks, less the 10 minutes waited) is watched again, plus
    # one read of the dead-letter queues' depth when the window opened.
    assert env.metrics.calls - before <= 12, env.metrics.calls - before
    assert env.clock.now() - started <= 10 * 60 + 1


def test_a_run_resuming_a_monitoring_window_is_tagged_with_its_rollout_for_its_hooks():
    """The resumed window can still roll the release back; a hook run elsewhere after a crash
    finds the rollout to roll back only in the run's tag on the Prefect API."""
    from prefect.client.orchestration import get_client

    from rollway.rollout_tags import rollout_tag

    env, spec = _killed_while_monitoring()
    env.clock.sleep(601)  # the dead run's lease runs out
    watched = env.ledger.get(env.targets.canary_service).rollout_id
    state = progressive_on(env, spec, auto_approve(), owner="run-2", return_state=True)
    assert state.result().outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    with get_client(sync_client=True) as client:
        tags = client.read_flow_run(state.state_details.flow_run_id).tags
    assert rollout_tag(watched) in tags, tags


def test_a_second_run_during_monitoring_is_refused_and_the_first_finishes():
    env = env_with_ledger()
    spec = monitored_spec()
    seen: dict = {}

    def second_run_at_the_5th_check(name, args, kwargs):
        record = env.ledger.get(env.targets.canary_service)  # None at the preflight's read, before the rollout
        if name == "observe" and record is not None and record.phase is RolloutPhase.PROMOTED:
            seen["checks"] = seen.get("checks", 0) + 1
            if seen["checks"] == 5:
                assert record.owner == "run-1", "the watching run holds the lease"
                with pytest.raises(LockHeld):
                    progressive_on(env, spec, auto_approve(), owner="run-2", finished=lambda owner: False)
                seen["refused"] = True

    env.metrics = Intercept(env.metrics, second_run_at_the_5th_check)
    result = progressive_on(env, spec, auto_approve())
    assert seen.get("refused")
    assert result.outcome == "promoted"
    assert kinds(env).count("decommission") == 1
    assert env.ledger.get(env.targets.canary_service).owner is None


def test_a_resumed_window_that_sees_errors_records_the_rollback_before_acting():
    env, spec = _killed_while_monitoring()
    env.clock.sleep(601)  # the dead run's lease runs out
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, 0.08))
    result = progressive_on(env, spec, auto_approve(), owner="run-2")
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired > 0, "the old service was not decommissioned"
    assert kinds(env)[-4:] == ["rollback-start", "notifying", "notified", "rollback"]
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


@flow
def rollback_recorded_on(env, reason):
    return rollback_recorded(env, reason, actor="state hook (failed)")


@flow
def canary_hook_rollback(env, reason):
    """As a `canary` flow run's hook calls the rollback flow (flows/hooks.py): that run keeps no
    ledger, so it does not refuse a closed rollout, only records nothing on one."""
    return rollback_recorded(env, reason, actor="state hook (failed)", only_open=False, leave_closed=True)


def test_a_hook_rollback_inside_the_window_is_recorded_and_after_it_is_not():
    env, _ = _killed_while_monitoring()
    rollback_recorded_on(env, "run died while monitoring")
    assert kinds(env)[-4:] == ["rollback-start", "notifying", "notified", "rollback"]
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK

    # A finished, decommissioned rollout is not rewritten by a later rollback of an unrelated
    # `canary` flow run: its hook says the rollback is its own (leave_closed), so nothing of it is
    # recorded on the rollout. (A person's rollback by
    # hand is recorded: test_a_rollback_run_by_hand_after_a_decommissioned_promotion_is_recorded_on_it.)
    env = env_with_ledger()
    progressive_on(env, monitored_spec(), auto_approve())
    before = kinds(env)
    assert before[-2:] == ["decommission", "decommission-paged"]
    canary_hook_rollback(env, "canary run failed")
    assert kinds(env) == before
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED


# --- A rollout's own shifts only: what a resume may take from the load balancer --------------

APPROVAL_SPEC = RolloutSpec(image=IMAGE, stages=[
    Stage(weight=5, bake_seconds=120), Stage(weight=25, bake_seconds=120, approval=True),
    Stage(weight=50, bake_seconds=120), Stage(weight=100, bake_seconds=120),
])
# For a test whose look finds the traffic moved: a drift check reads the weights again for the
# spec's read-back lag, on real time (a load balancer's lag does not follow the rollout clock),
# 30 s by default. The fakes answer at once and the move is no lag, so half a second finds it too.
MOVED_TRAFFIC_SPEC = APPROVAL_SPEC.model_copy(update={"verify_timeout_seconds": 0.5})


class Intercept:
    """Wraps a port; ``before(name, args, kwargs)`` runs ahead of every call it forwards."""

    def __init__(self, inner, before):
        self._inner, self._before = inner, before

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._before(name, args, kwargs)
            return attr(*args, **kwargs)

        return call


def dies_at_observe(env, n: int, why: str):
    """Make the ``n``-th metrics read kill the process; returns the real port, to put back."""
    real, observed = env.metrics, []

    def before(name, args, kwargs):
        if name == "observe":
            observed.append(name)
            if len(observed) == n:
                raise Killed(why)

    env.metrics = Intercept(real, before)
    return real


def test_a_rollback_by_hand_stops_the_live_run_before_it_moves_traffic_again():
    env = env_with_ledger()
    real = env.ledger

    def on_call_rolls_back_once_5_percent_passed(name, args, kwargs):
        record = real.get(env.targets.canary_service)
        if record and record.last_transition("verdict") and not record.last_transition("rollback-start"):
            env.ledger = real  # the rollback flow, run by hand, writes to the same table
            rollback_recorded(env, "on-call: customers report errors", actor="oncall")
            env.ledger = wrapped

    wrapped = Intercept(real, on_call_rolls_back_once_5_percent_passed)
    env.ledger = wrapped
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)])
    with pytest.raises(RolloutEnded, match="rolled_back by oncall"):
        progressive_on(env, spec, scripted())
    env.ledger = real
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert env.router.weights == Weights(stable=100, canary=0)
    assert shifts(env) == [5], "no shift after the rollback"
    assert kinds(env)[-4:] == ["rollback-start", "notifying", "notified", "rollback"]


def test_a_refused_skip_ahead_approves_nothing_and_a_resume_asks_again():
    env = env_with_ledger()
    asked = []

    def approver(pause, summary):
        asked.append(pause.stage_index)
        if len(asked) == 1:  # a typo: 7% is not a stage, so the answer is refused and asked again
            return ApprovalAnswer(action="approve", approver="bob", comment="go", next_weight=7)
        raise Killed("the process dies while waiting for the corrected answer")

    with pytest.raises(Killed):
        progressive_on(env, APPROVAL_SPEC, approver)
    record = env.ledger.get(env.targets.canary_service)
    assert record.approved_stage is None and "approve" not in kinds(env)
    env.clock.sleep(601)
    again = []
    result = progressive_on(env, APPROVAL_SPEC, lambda p, s: again.append(p.stage_index) or ApprovalAnswer(
        action="reject", approver="carol", comment="not today"), owner="run-2")
    assert again == [1] and result.outcome == "rolled_back"
    assert shifts(env) == [5]


def test_weights_moved_by_hand_to_the_next_stage_before_it_passed_are_drift():
    env = env_with_ledger()
    real = dies_at_observe(env, 2, "dies while 5% bakes")
    with pytest.raises(Killed):
        progressive_on(env, APPROVAL_SPEC, auto_approve())
    env.metrics = real
    assert env.ledger.get(env.targets.canary_service).stage_passed is False
    env.router.weights = Weights(stable=75, canary=25)  # someone sets the next stage's weights by hand
    env.clock.sleep(601)
    with pytest.raises(DriftDetected, match="75/25|canary=25"):
        progressive_on(env, APPROVAL_SPEC, auto_approve(), owner="run-2")


SKIP_TO_50 = ApprovalAnswer(action="approve", approver="bob", comment="skip 25", next_weight=50)


def dies_moving_to_50(name, args, kwargs):
    if name == "set_weights" and args and args[0].canary == 50:
        raise Killed("dies after the approval was recorded, before the load balancer moved")


def dies_recording_the_jump(name, args, kwargs):
    transition = kwargs.get("transition")
    if name == "record" and transition is not None and transition.kind == "shift" and transition.to_weights.canary == 50:
        raise Killed("dies after the load balancer moved to 50%, before the ledger heard of it")


@pytest.mark.parametrize("port,dies,live", [("router", dies_moving_to_50, 5), ("ledger", dies_recording_the_jump, 50)],
                         ids=["before its shift", "after its shift"])
def test_a_skip_ahead_killed_around_its_shift_is_resumed_at_the_approved_stage_without_asking_again(port, dies, live):
    env = env_with_ledger()
    real = getattr(env, port)
    setattr(env, port, Intercept(real, dies))
    with pytest.raises(Killed):
        progressive_on(env, APPROVAL_SPEC, lambda p, s: SKIP_TO_50)
    setattr(env, port, real)
    record = env.ledger.get(env.targets.canary_service)
    assert (record.weights.canary, record.approved_stage, env.router.weights.canary) == (5, 2, live)
    env.clock.sleep(601)
    asked = []
    result = progressive_on(env, APPROVAL_SPEC, lambda p, s: asked.append(p.stage_index) or SKIP_TO_50, owner="run-2")
    assert asked == [], "bob's recorded approval covers the jump; nobody is asked again"
    assert result.outcome == "promoted"
    assert shifts(env) == [5, 50, 100], "25% stays skipped"
    found = [t for t in env.ledger.get(env.targets.canary_service).history if t.kind == "shift"][1]
    # A shift found on the load balancer is recorded by the reconciliation; one still owed, by the run.
    assert (found.actor, found.to_stage) == ("reconcile" if live == 50 else "alice", 2)


def test_flags_follow_a_shift_that_a_resume_finds_on_the_load_balancer():
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    feature = "use_sqs_architecture"
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)],
                       flags=[FlagBinding(feature=feature)])
    env = env_with_ledger()
    store = FakeFlagStore([FlagState(feature=feature)])
    process: dict = {}

    def dies_writing_the_50_percent_flag(name, args, kwargs):
        if name == "put" and args and getattr(args[0], "percentage", None) == 50.0:
            process["dead"] = True
        if process.get("dead"):
            raise Killed(f"process killed ({name})")

    env.flags = Intercept(store, dies_writing_the_50_percent_flag)
    real = (env.router, env.ledger)
    env.router, env.ledger = mortal(real[0], process), mortal(real[1], process)
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    env.router, env.ledger = real
    env.flags = store
    assert (env.router.weights.canary, store.get(feature).percentage) == (50, 5.0)
    env.clock.sleep(601)
    seen = []
    metrics = env.metrics
    env.metrics = Intercept(metrics, lambda name, a, k: name == "observe" and seen.append(
        (env.router.weights.canary, store.get(feature).percentage)))
    result = progressive_on(env, spec, auto_approve(), owner="run-2")
    assert result.outcome == "promoted"
    assert seen and all(weight == percentage for weight, percentage in seen), sorted(set(seen))
    assert "flag" in kinds(env)[kinds(env).index("shift", 3):]


def test_a_new_image_after_a_full_promotion_is_refused_with_advice_that_does_not_revert_production():
    env = env_with_ledger()
    assert progressive_on(env, monitored_spec(), auto_approve()).outcome == "promoted"
    newer = monitored_spec().model_copy(update={"image": "webordinary/edit-container:3.0.0"})
    with pytest.raises(RolloutRefused, match="is production now") as refused:
        progressive_on(env, newer, auto_approve(), owner="run-2")
    assert "abort" not in str(refused.value)
    assert env.router.weights == Weights(stable=0, canary=100)


def test_an_answer_to_a_rollout_another_run_drove_meanwhile_is_not_applied():
    """While run 1 waits for its approval, another run takes the expired lease and records
    progress. Run 1's answer (here a timeout that would roll back) is stale: it stops with
    RolloutMovedOn, moving nothing, and its hook leaves it alone."""
    from rollway.ledger import RolloutMovedOn, Transition

    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)

    def meanwhile(pause, summary):
        env.clock.sleep(601)  # run 1's lease runs out during the pause
        service = env.targets.canary_service
        env.ledger.acquire(service, owner="run-2", now=env.clock.now(), lease_seconds=600)
        env.ledger.record(service, owner="run-2", now=env.clock.now(),
                          transition=Transition(at=env.clock.now(), kind="approve", actor="erin", to_stage=1))
        env.ledger.release(service, owner="run-2")
        return ApprovalAnswer(action="reject", approver="timeout", comment="nobody answered", timed_out=True)

    with pytest.raises(RolloutMovedOn, match="moved on while this run waited") as stale:
        progressive_on(env, spec, meanwhile)
    assert env.router.weights == Weights.canary_at(5), "the stale answer moved no traffic"
    assert kinds(env)[-1] == "approve"
    from prefect.states import Failed

    from flows.hooks import leave_alone

    assert leave_alone(Failed(data=stale.value), {}) is not None, "the run's hook must not roll back"


def test_a_rejection_is_rolled_back_in_the_name_of_the_person_who_rejected():
    """The SNS notice, the ledger and the bound flag's audit trail name dana, not the judge."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)],
                       flags=[FlagBinding(feature="use_sqs_architecture")], monitor_seconds=0)
    result = progressive_on(env, spec, scripted(ApprovalAnswer(action="reject", approver="dana", comment="latency")))
    assert result.outcome == "rolled_back"
    notice = next(m for s, m in env.notifier.messages if s.startswith("Rollback"))
    assert "Requested by: dana" in notice, notice
    assert env.flags.trails["use_sqs_architecture"][-1].actor == "dana"
    record = env.ledger.get(env.targets.canary_service)
    assert [t.actor for t in record.history if t.kind in ("rollback-start", "rollback")] == ["dana", "dana"]


def test_a_guardrail_rollback_is_requested_by_the_guardrail_in_the_page_the_ledger_and_the_report():
    """The page said "Requested by: judge" when the 1% error-rate guardrail, not the statistical
    judge, asked for the rollback; the ledger and the incident report now name the same asker."""
    from rollway.reports import incident_report

    env = env_with_ledger(canary_error_rate=0.3)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                       monitor_seconds=0)
    result = progressive_on(env, spec, None)
    assert result.outcome == "rolled_back" and "over the 1% guardrail" in result.reason, result.reason
    notice = next(m for s, m in env.notifier.messages if s.startswith("Rollback"))
    assert "Requested by: guardrail\n" in notice, notice
    record = env.ledger.get(env.targets.canary_service)
    assert [t.actor for t in record.history if t.kind in ("rollback-start", "rollback")] == ["guardrail", "guardrail"]
    report = incident_report(record)
    assert "- **Trigger:** an absolute guardrail on the canary's errors" in report, report
    assert "- **Recorded by:** guardrail at" in report, report


def test_the_reports_say_which_version_users_get_after_the_rollback_as_the_rollback_read_it():
    """The incident report named only the canary's restored task definition, and the rollout report
    called it "previous": neither said what the stable service ran, which is what users get."""
    from rollway.reports import incident_report, rollout_report
    from tests.flows.fake_env import STABLE_TD

    env = env_with_ledger(canary_error_rate=0.3)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                       monitor_seconds=0)
    assert progressive_on(env, spec, None).outcome == "rolled_back"
    record = env.ledger.get(env.targets.canary_service)
    said = (f"- **Users get since the rollback:** {STABLE_TD}, the task definition `{env.targets.stable_service}` "
            "ran when the rollback put all the traffic on it (recorded by the rollback;")
    assert said in incident_report(record, targets=env.targets), incident_report(record, targets=env.targets)
    report = rollout_report(record)
    assert f"- **Users get since the rollback:** {STABLE_TD}, the task definition the stable service ran" in report
    assert f"previous {STABLE_TD} ({env.targets.canary_service}'s before the rollout, taking no traffic)" in report


def test_the_rollback_page_names_the_version_and_the_rollout_it_rolled_back():
    """The page said which service was rolled back and why, never which version nor which rollout,
    and sent on-call to "the window above", which it did not hold."""
    env = env_with_ledger(canary_error_rate=0.3)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                       monitor_seconds=0)
    result = progressive_on(env, spec, None)
    assert result.outcome == "rolled_back", result.reason
    record = env.ledger.get(env.targets.canary_service)
    ran = next(td for td, image in env.deployer.task_definitions.items() if image == IMAGE)
    notice = next(m for s, m in env.notifier.messages if s.startswith("Rollback"))
    assert (f"Version: {IMAGE} ({env.targets.canary_service} ran {ran}); rollout {record.rollout_id}."
            in notice), notice
    assert "window above" not in notice


def test_a_ledgered_rollouts_failed_rollback_pages_that_rollway_abort_runs_it_again():
    """The rollout is in the ledger, rolling back: `rollway abort` finishes it, and the page says
    so (a `canary` flow run's names only the rollback flow: tests/flows/test_canary_fakes.py)."""
    from botocore.exceptions import ClientError

    from rollway.aws.denied import PermissionDenied

    env = env_with_ledger(canary_error_rate=0.3)
    real_set = env.router.set_weights

    def refuse_stable(weights):
        if weights.canary == 0:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ModifyRule")
        return real_set(weights)

    env.router.set_weights = refuse_stable
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                       monitor_seconds=0)
    with pytest.raises(PermissionDenied, match="elasticloadbalancing:ModifyRule"):
        progressive_on(env, spec, None)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
    [page] = [m for s, m in env.notifier.messages if s.startswith("Rollback FAILED")]
    assert "Run the rollback again (`rollway abort`, or the rollback flow)" in " ".join(page.split()), page


def test_a_rollback_run_by_hand_after_a_finalized_promotion_names_no_version_it_did_not_take_out(monkeypatch):
    """Once finalized, the promoted image runs on stable: a rollback by hand changes no version, and
    its page must not name that image as the one rolled back."""
    import flows.rollback

    env = env_with_ledger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                       monitor_seconds=0)
    assert progressive_on(env, spec, None).outcome == "promoted"
    promoted = env.deployer.services[t.canary_service].task_definition
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"task_definition": promoted})  # finalize: stable takes the promoted version and the traffic
    env.deployer.services[t.canary_service] = env.deployer.services[t.canary_service].model_copy(
        update={"desired": 0, "running": 0})
    env.router.weights = Weights(stable=100, canary=0)

    flows.rollback.rollback(reason="checking", actor="erin")
    notice = env.notifier.messages[-1][1]
    assert notice.startswith(f"rollway rolled back {t.canary_service}") and "Version:" not in notice, notice


def test_a_rollback_run_by_hand_after_a_promotion_no_window_or_finalize_closed_is_recorded_on_it(monkeypatch, capsys):
    """No window owed (monitor_seconds 0), nothing decommissioned or finalized: the stable service
    still runs the previous version, so a rollback by hand takes the promoted one out of production.
    The ledger used to keep saying promoted: `rollway status` named the new version as production
    while the traffic was on the old one, and finalize refused, saying it was moved back by hand."""
    from uuid import uuid4

    import flows.rollback
    import rollway.cli.ops as ops
    from flows.finalize import run_finalize
    from rollway.fakes import FakeFlagStore
    from rollway.finalize import FinalizeRefused
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature="multi-session", enabled=True, percentage=100.0)])
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                       monitor_seconds=0, flags=(FlagBinding(feature="multi-session"),))
    assert progressive_on(env, spec, None).outcome == "promoted"
    rollout = env.ledger.get(t.canary_service).rollout_id
    previous = env.ledger.get(t.canary_service).previous_task_definition

    flows.rollback.rollback(reason="sessions lost", actor="erin")

    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[t.stable_service].task_definition == previous
    record = env.ledger.get(t.canary_service)
    assert (record.rollout_id, record.phase) == (rollout, RolloutPhase.ROLLED_BACK)
    assert kinds(env)[-4:] == ["rollback-start", "notifying", "notified", "rollback"]
    assert record.last_transition("rollback").actor == "erin"
    # As the rollback of an open rollout does: the promoted version's flags are off with it.
    assert env.flags.get("multi-session").enabled is False
    assert f"rollout {rollout}" in env.notifier.messages[-1][1]

    service = ops.Service(targets=t, targets_block=f"promoted-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    capsys.readouterr()
    assert ops.status(targets_block=service.targets_block, credentials_block=None) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "phase rolled_back" in said, said

    @flow
    def finalize_on():
        return run_finalize(env, actor="alice", stable_timeout_seconds=5, verify_timeout_seconds=1)

    with pytest.raises(FinalizeRefused, match="is rolled_back, not promoted") as refused:
        finalize_on()
    assert "moved the traffic back by hand" not in str(refused.value)


def test_a_rollback_run_by_hand_after_a_decommissioned_promotion_is_recorded_on_it(monkeypatch):
    """The common case: the window ended with a decommission (the old service scaled to 0 on the
    previous revision), and on-call rolls the promotion back by hand a day later. The rollback put
    the previous version back, and the ledger kept saying promoted (`rollway status` named the new
    version as production); it is now recorded, and the promotion's flags are off with it."""
    import flows.rollback
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature="multi-session", enabled=True, percentage=100.0)])
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    t = env.targets
    spec = monitored_spec().model_copy(update={"flags": (FlagBinding(feature="multi-session"),)})
    assert progressive_on(env, spec, auto_approve()).outcome == "promoted"
    assert kinds(env)[-2:] == ["decommission", "decommission-paged"]
    record = env.ledger.get(t.canary_service)
    assert env.deployer.services[t.stable_service].desired == 0
    assert env.deployer.services[t.stable_service].task_definition == record.previous_task_definition

    flows.rollback.rollback(reason="sessions lost since yesterday", actor="erin")

    assert env.router.weights == Weights(stable=100, canary=0)
    stable = env.deployer.services[t.stable_service]
    assert stable.task_definition == record.previous_task_definition and stable.desired > 0
    after = env.ledger.get(t.canary_service)
    assert (after.rollout_id, after.phase) == (record.rollout_id, RolloutPhase.ROLLED_BACK)
    assert kinds(env)[-6:] == ["decommission", "decommission-paged", "rollback-start", "notifying", "notified", "rollback"]
    assert after.last_transition("rollback").actor == "erin"
    assert env.flags.get("multi-session").enabled is False
    assert f"rollout {record.rollout_id}" in env.notifier.messages[-1][1]


def test_a_canary_runs_hook_rollback_over_a_promotion_moved_back_by_hand_leaves_the_promotion_alone():
    """The traffic of a promotion nothing decommissioned was moved back by hand, and a `canary` flow
    run deployed to the canary service since: its failed run's hook rolls that run back, not the
    promotion, so the ledger's rollout is left as it was (not named rolled back by the hook)."""
    env = env_with_ledger()
    t = env.targets
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                       monitor_seconds=0)
    assert progressive_on(env, spec, None).outcome == "promoted"
    before = env.ledger.get(t.canary_service)
    env.deployer.services[t.canary_service] = env.deployer.services[t.canary_service].model_copy(
        update={"task_definition": before.canary_task_definition.replace(":100", ":101")})  # the canary run's
    env.router.weights = Weights(stable=95, canary=5)

    canary_hook_rollback(env, "canary run failed")

    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(t.canary_service) == before


def test_an_approval_that_cannot_be_applied_says_why_in_the_next_form():
    """dana approves next_weight 37, not a stage: nothing is approved, and the form asking
    again says why (from the UI her answer would look lost otherwise)."""
    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    forms: list[str] = []
    answers = iter([ApprovalAnswer(action="approve", approver="dana", next_weight=37),
                    ApprovalAnswer(action="approve", approver="dana")])

    def approver(pause, summary):
        forms.append(summary)
        return next(answers)

    assert progressive_on(env, spec, approver).outcome == "promoted"
    assert len(forms) == 2
    assert "not applied" not in forms[0]
    assert "dana's approval was not applied" in forms[1] and "37" in forms[1], forms[1]


def test_a_rollback_asked_again_after_it_finished_does_not_page_again_unless_it_changed_something():
    """A hook after a manual abort, two rollback flow runs, the runner's cancel: the second
    request finds nothing to do and sends no second Rollback notice. If someone moved traffic
    back onto the canary meanwhile, the rollback moves it again, and says so."""
    env = env_with_ledger(canary_error_rate=0.05)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=0)
    assert progressive_on(env, spec, auto_approve()).outcome == "rolled_back"

    def pages() -> int:
        return sum(1 for subject, _ in env.notifier.messages if subject.startswith("Rollback"))

    assert pages() == 1

    @flow
    def again(reason):
        return rollback_recorded(env, reason, actor="oncall")

    result = again("asked twice")
    assert pages() == 1 and result.notification_id is None
    assert "not notified again" in result.steps[-1]
    assert env.router.weights == Weights(stable=100, canary=0)

    env.router.set_weights(Weights.canary_at(5))  # someone put traffic back on the canary by hand
    again("traffic went back to the canary")
    assert pages() == 2 and env.router.weights == Weights(stable=100, canary=0)


def test_a_pause_left_unanswered_for_weeks_adds_one_ledger_entry_not_one_per_timeout():
    """With on_timeout="hold" every timeout asks again. One history entry per timeout grew the
    DynamoDB item past its 400 KB limit within the 3-week plan (about 12 days at a 10-minute
    timeout), and then no write was accepted, not even a rollback's intent."""
    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120, approval=True)],
                       approvals=Approvals(timeout_seconds=600, on_timeout="hold"), monitor_seconds=0)
    asked = []

    def nobody_answers_for_a_while(pause, summary):
        asked.append(pause.stage_index)
        env.clock.sleep(600)
        if len(asked) <= 200:
            return ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 600 s")
        return ApprovalAnswer(action="approve", approver="alice", comment="back from leave")

    result = progressive_on(env, spec, nobody_answers_for_a_while)
    assert result.outcome == "promoted" and len(asked) == 201
    record = env.ledger.get(env.targets.canary_service)
    assert kinds(env).count("timeout") == 1, [(t.kind, t.to_stage, t.verdict) for t in record.history if t.kind == "timeout"]
    assert kinds(env)[-1] == "promote" and kinds(env).count("approve") == 1


def test_a_rejection_before_the_first_stage_reports_no_stage():
    """The spec asks for approval before its first stage, and bob rejects: no stage ran. The
    result used to carry a stage row with index -1, and the journal indexed spec.stages[-1],
    publishing a "100 %: canary vs baseline" table for a stage that never started."""
    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180, approval=True),
                                            Stage(weight=100, bake_seconds=180)])
    result = progressive_on(env, spec, lambda pause, summary: ApprovalAnswer(action="reject", approver="bob",
                                                                             comment="not today"))
    assert result.outcome == "rolled_back" and "rejected by bob" in result.reason
    assert result.stages == (), [(s.stage_index, s.decision) for s in result.stages]
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_promotion_without_a_window_says_the_plans_decommission_does_not_run(caplog):
    """monitor_seconds 0 with a plan that decommissions: the old service kept its tasks at 0 %
    without a word, and a person read the plan as done."""
    import logging

    env = env_with_ledger()
    spec = full_spec().model_copy(update={"monitor_seconds": 0})
    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, spec, auto_approve("alice"))
    assert result.outcome == "promoted"
    assert env.deployer.services[env.targets.stable_service].desired > 0
    assert any("the plan's decommission does not run" in r.getMessage() for r in caplog.records)


def test_a_fresh_run_records_its_mode_with_the_rollout_not_as_a_resume():
    env = env_with_ledger()
    result = progressive_on(env, full_spec(), auto_approve("alice"), phased=False)
    assert result.outcome == "promoted"
    assert "resume" not in kinds(env), kinds(env)
    # Dies right after its first write: the rollout already says it runs every stage now, so
    # the watchdog resumes it unphased, as the person started it.
    env, spec, killed, calls = _run_with_kill(kill_at=0)
    first_write = calls.index("create") + 1
    env, spec, killed, _ = _run_with_kill(first_write + 1)
    assert killed and env.ledger.get(env.targets.canary_service).phased is False


def test_a_rollout_on_fakes_runs_the_pinned_digest_and_its_page_names_tag_and_digest():
    """With a pinner the fakes pin as ECR does: the canary's revision names the digest, the ledger
    records it, and the rollback's page names the tag and the digest the canary ran."""
    from rollway.fakes import FakeImagePinner

    env = env_with_ledger(canary_error_rate=0.3)
    digest = "sha256:" + "ab" * 32
    env.images = FakeImagePinner({IMAGE: digest})
    pinned = f"webordinary/edit-container@{digest}"
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                       monitor_seconds=0)
    result = progressive_on(env, spec, None)
    assert result.outcome == "rolled_back", result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert (record.image, record.pinned_image) == (IMAGE, pinned)
    assert IMAGE not in env.deployer.task_definitions.values()
    ran = next(td for td, image in env.deployer.task_definitions.items() if image == pinned)
    notice = next(m for s, m in env.notifier.messages if s.startswith("Rollback"))
    assert f"Version: {IMAGE} (pinned as {pinned}) ({env.targets.canary_service} ran {ran}); rollout " in notice, notice


class CanaryScaledToZeroAtFivePercent(FakeMetrics):
    """Someone scales the canary service to 0 (a `terraform apply` of its desired count, say) while
    the 5 % stage bakes; the fake's metrics go on as if it served."""

    def __init__(self, env):
        super().__init__(env.router, steady(5000.0, 0.001, 0.0))
        self.env = env

    def observe(self, start, end):
        if self.router.weights == Weights.canary_at(5):
            deployer, canary = self.env.deployer, self.env.targets.canary_service
            deployer.services[canary] = deployer.services[canary].model_copy(update={"desired": 0, "running": 0})
        return super().observe(start, end)


def test_a_canary_scaled_to_zero_by_someone_else_is_rolled_back_not_scaled_up_again():
    """Scaled to 0 while it served 5 %, the canary turned those users away for the whole approval
    pause, and the approval's shift then scaled it up again without a word, overriding whoever
    scaled it down. The run looks before it asks, and rolls back instead."""
    env = env_with_ledger()
    env.metrics = CanaryScaledToZeroAtFivePercent(env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600),
                                            Stage(weight=25, approval=True, bake_seconds=600),
                                            Stage(weight=100, bake_seconds=600)], monitor_seconds=0)
    asked = []

    def approver(pause, summary):
        asked.append(pause.reason)
        return ApprovalAnswer(action="approve", approver="bob")

    result = progressive_on(env, spec, approver)
    assert asked == [], asked
    assert result.outcome == "rolled_back", result.reason
    assert "scaled to 0" in result.reason and "instead of asking for approval" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert shifts(env) == [5, 0] or shifts(env) == [5], shifts(env)
    assert env.deployer.services[env.targets.canary_service].desired == 0


class CanaryScaledDownAtFiftyPercent(FakeMetrics):
    """Someone scales the canary service from 2 tasks to 1 while the 50 % stage bakes."""

    def __init__(self, env):
        super().__init__(env.router, steady(5000.0, 0.001, 0.0))
        self.env = env

    def observe(self, start, end):
        deployer, canary = self.env.deployer, self.env.targets.canary_service
        if self.router.weights == Weights.canary_at(50) and deployer.services[canary].desired == 2:
            deployer.services[canary] = deployer.services[canary].model_copy(update={"desired": 1, "running": 1})
        return super().observe(start, end)


def test_a_canary_scaled_down_by_someone_else_is_said_when_the_next_shift_scales_it_up(caplog):
    """The shift after it scaled the canary back up without a word: whoever scaled it down (an
    autoscaling policy, a colleague) was not told their change was undone, nor the run's reader
    that the stage had been judged on fewer tasks than it was sized for."""
    import logging

    env = env_with_ledger()
    env.metrics = CanaryScaledDownAtFiftyPercent(env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (50, 75, 100)],
                       monitor_seconds=0)
    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, spec, None)
    assert result.outcome == "promoted", result.reason
    said = [r.getMessage() for r in caplog.records if "scaled" in r.getMessage()]
    assert any("runs 1 task(s), not the 2 this run scaled it to for 50%" in m and "scaling it to 3 for 75%" in m
               for m in said), said



def test_the_notice_a_pause_sends_says_the_canary_is_judged_meanwhile_only_when_it_is():
    """The SNS notice is what a person on a phone reads: it said only that the run waits, and
    they took their time not knowing the run rolls back on its own meanwhile if the canary fails
    (the pause then ends and their answer is no longer taken). Not said when nothing is judged:
    a two-argument approver is given no watch."""
    def two_arguments(pause, summary):
        return ApprovalAnswer(action="approve", approver="dana")

    def watched(pause, summary, watch=None):
        return ApprovalAnswer(action="approve", approver="dana")

    notices = {}
    for name, approver in (("two", two_arguments), ("watched", watched)):
        env = env_with_ledger()
        assert progressive_on(env, APPROVAL_SPEC, approver).outcome == "promoted"
        notices[name] = [message for subject, message in env.notifier.messages if "waits for a person" in subject]
    assert len(notices["two"]) == len(notices["watched"]) == 1, notices
    (told,) = notices["watched"]
    assert "the run keeps judging the canary every 60 s" in told and "rolls back on its own if it fails" in told, told
    assert "keeps judging" not in notices["two"][0], notices["two"][0]


def test_a_canary_failing_during_an_approval_pause_is_rolled_back_and_recorded_without_an_answer():
    """The judge's rollback during the pause is recorded as one during a stage is: its reason, the
    guardrail as actor, and a page; an approval given at that very moment is recorded as not applied."""
    env = env_with_ledger()

    def asked(pause, summary, watch=None):
        assert "keeps judging the canary every 60 s" in summary
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        # Time passes on the rollout clock; the watch ends the pause at its first look.
        while watch() is None:
            env.clock.sleep(2)
        return ApprovalAnswer(action="approve", approver="dana", comment="just now")

    result = progressive_on(env, APPROVAL_SPEC, asked)
    assert result.outcome == "rolled_back" and env.router.weights == Weights(stable=100, canary=0)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    start = next(t for t in record.history if t.kind == "rollback-start")
    assert start.actor == "guardrail" and start.comment == result.reason and result.reason.startswith("5%: ")
    assert "approve" not in kinds(env) and shifts(env) == [5]
    (refused,) = record.refused_answers
    assert (refused.actor, refused.action) == ("dana", "approve")
    assert refused.reason.startswith("not applied: the run's look at the canary came first") and result.reason in refused.reason
    assert env.notifier.messages[-1][0].startswith("Rollback")


def _readme_seed_plan() -> dict:
    """The spec the README gives for the seed's own weekly plan (week 3 opens at 100 %)."""
    import json
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = [json.loads(span) for span in re.findall(r"`(\{\"image\"[^`]*\"week 3\"[^`]*\})`", readme)]
    assert len(found) == 1, f"the README gives {len(found)} spec(s) with a week 3 plan; expected the seed's one"
    return found[0]


def test_the_readmes_seed_plan_opens_week_3_at_100_percent_after_its_approval():
    """The seed's week 3 is "100 % and decommission"; the default plan passes 75 % on its way
    there. The README's setting for the seed's plan must run: week 1 at 5 %, week 2 at 25 % then
    50 %, and week 3 asks before moving 50 % straight to 100 %, then decommissions."""
    data = _readme_seed_plan()
    spec = RolloutSpec.model_validate({**data, "image": IMAGE, "monitor_seconds": 300})
    assert [(p.name, p.weights, p.decommission) for p in spec.phases] == [
        ("week 1", (5,), False), ("week 2", (25, 50), False), ("week 3", (100,), True)]
    spec = spec.model_copy(update={"stages": tuple(s.model_copy(update={"bake_seconds": 180}) for s in spec.stages)})
    env = env_with_ledger()
    assert progressive_on(env, spec, auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.sleep(WEEK)
    assert advance_on(env, auto_approve("carol"), "cron-1").outcome == "holding" and shifts(env) == [5, 25, 50]
    env.clock.sleep(WEEK)
    asked_at = []

    def carol(pause, summary, watch=None):
        asked_at.append(env.router.weights.canary)
        return ApprovalAnswer(action="approve", approver="carol", comment="week 3")

    assert advance_on(env, carol, "cron-2").outcome == "promoted"
    assert shifts(env) == [5, 25, 50, 100] and asked_at == [50]
    assert "decommission" in kinds(env)


def _week_1_then_a_hotfix_on_the_canary():
    """Week 1 holds at 5 %; then another revision goes onto the canary service by hand.
    Returns the environment, the canary service and the rollout's own revision."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    service = env.targets.canary_service
    ours = env.ledger.get(service).canary_task_definition
    env.deployer.task_definitions["edit-task:7"] = "webordinary/edit-container:hotfix"
    env.deployer.update_service(service, task_definition="edit-task:7")
    return env, service, ours


def test_a_canary_service_redeployed_between_weeks_is_refused_before_the_next_phase_moves_traffic():
    """Between week 1 and week 2 someone puts another revision on the canary service (a CDK deploy
    of its stack, a hotfix by hand). The Monday tick shifted 25 % and 50 % of the traffic onto that
    revision and judged it as the rollout's new version: a version nobody rolled out, promoted by
    week 3. The tick now refuses before anything is written, naming both revisions, and goes on
    once the rollout's revision is back."""
    env, service, ours = _week_1_then_a_hotfix_on_the_canary()
    env.clock.sleep(WEEK)
    with pytest.raises(PhaseRefused) as refused:
        advance_on(env, auto_approve("carol"), "cron-1")
    said = str(refused.value)
    assert f"runs edit-task:7, not the rollout's {ours}" in said and "nothing was changed" in said.lower(), said
    assert "week 2" in said, said
    record = env.ledger.get(service)
    assert (record.weekly_phase_index, record.owner, shifts(env)) == (0, None, [5])
    assert env.router.weights == Weights(stable=95, canary=5)
    env.deployer.update_service(service, task_definition=ours)  # the operator puts the rollout's revision back
    assert advance_on(env, auto_approve("carol"), "cron-2").outcome == "holding" and shifts(env) == [5, 25, 50]


def test_a_resume_on_a_canary_service_redeployed_since_is_refused_before_it_moves_traffic():
    """Week 1 holds at 5 %; a hotfix goes onto the canary service by hand; alice then runs every
    remaining stage now (phased=false). The resume shifted 25 % to 100 % onto the hotfix and
    promoted it as the rollout's image. It is refused before any write instead, and nothing is held."""
    env, service, ours = _week_1_then_a_hotfix_on_the_canary()
    with pytest.raises(RolloutRefused) as refused:
        progressive_on(env, full_spec(), auto_approve("alice"), owner="run-2", phased=False)
    said = str(refused.value)
    assert f"runs edit-task:7, not the rollout's {ours}" in said and "run progressive_rollout again" in said, said
    record = env.ledger.get(service)
    assert (record.owner, record.phased, shifts(env)) == (None, True, [5]), record


def test_a_canary_re_registered_with_the_rollouts_own_image_is_refused_saying_why_and_how_to_go_on():
    """A CDK deploy re-registered the canary's task definition with the rollout's own image (its
    tags changed, say): the tick refused as for a hotfix, "another revision was put on it", which
    read as a false alarm on a canary running the image being rolled out. The refusal stands (the
    revision's command, environment or secrets may differ from the one judged) and says so, and how
    to go on either way; one on another image names that image."""
    env, service, ours = _week_1_then_a_hotfix_on_the_canary()
    record = env.ledger.get(service)
    env.deployer.task_definitions["edit-task:8"] = record.pinned_image or record.image
    env.deployer.update_service(service, task_definition="edit-task:8")
    env.clock.sleep(WEEK)
    with pytest.raises(PhaseRefused) as refused:
        advance_on(env, auto_approve("carol"), "cron-1")
    said = str(refused.value)
    assert f"it names the rollout's image, {record.pinned_image or record.image}, but as another revision, whose " \
           "other settings (command, environment, secrets, roles, cpu and memory, other containers) this rollout's " \
           "stages did not judge" in said, said
    assert f"--task-definition {ours}) and run advance_phase again, or, to roll out the new revision's settings, " \
           "roll this rollout back (`rollway abort`) and start a new one" in said, said
    assert env.router.weights == Weights(stable=95, canary=5) and shifts(env) == [5]
    env.deployer.update_service(service, task_definition="edit-task:7")
    with pytest.raises(PhaseRefused) as refused:
        advance_on(env, auto_approve("carol"), "cron-2")
    said = str(refused.value)
    assert "it names webordinary/edit-container:hotfix, not the rollout's " in said and "but as another" not in said


def test_a_pause_watch_stands_down_when_another_run_took_the_rollout_over_meanwhile(caplog):
    """A run paused for an approval renews no lease. Another run took the lapsed lease (the paused
    run's process taken for dead, say) and shifted to 25 %; the paused run's watch then read 75/25,
    took it for someone moving its traffic, and rolled back the rollout the other run drives: two
    runs writing the weights. It now takes the rollout back before acting, and stands down."""
    import logging

    from rollway.ledger import RolloutMovedOn, Transition

    env = env_with_ledger()
    service = env.targets.canary_service

    def asked(pause, summary, watch=None):
        env.clock.sleep(700)  # past the run's lease (600 s)
        record = env.ledger.get(service)
        now, wall = env.clock.now(), env.wall()
        env.ledger.acquire(service, owner="run-2", now=now, lease_seconds=600, rollout=record.rollout_id, wall=wall)
        env.router.weights = Weights.canary_at(25)
        env.ledger.record(service, owner="run-2", now=now, lease_seconds=600, wall=wall, weights=Weights.canary_at(25),
                          stage_index=1, stage_started_at=now, stage_passed=False,
                          transition=Transition(at=now, kind="shift", actor="bob", from_weights=Weights.canary_at(5),
                                                to_weights=Weights.canary_at(25), from_stage=0, to_stage=1))
        while watch() is None:
            env.clock.sleep(2)
        return None  # the watch ended the pause: nobody answered

    with caplog.at_level(logging.WARNING), pytest.raises(RolloutMovedOn):
        progressive_on(env, MOVED_TRAFFIC_SPEC, asked)
    record = env.ledger.get(service)
    assert env.router.weights == Weights.canary_at(25), "the other run's traffic was moved"
    assert record.phase is RolloutPhase.PROGRESSING and record.owner == "run-2", (record.phase, record.owner)
    assert "rollback-start" not in kinds(env)
    assert any("stands down" in r.getMessage() and "run-2" in r.getMessage() for r in caplog.records), caplog.text


def test_a_pause_watch_stands_down_too_when_another_run_holds_the_rollout_still_pending(caplog):
    """Another run holds the paused run's rollout, recorded pending (its write reset the phase, say),
    and moved the traffic. The look took the move for drift; taking the rollout back then failed on
    the other run's live lease with a bare LockHeld, which named no stand-down and no rollback left
    undone. It stands down as when the other run drives it, naming that run."""
    import logging

    from rollway.ledger import RolloutMovedOn

    env = env_with_ledger()
    service = env.targets.canary_service

    def asked(pause, summary, watch=None):
        env.clock.sleep(700)  # past the run's lease (600 s)
        record = env.ledger.get(service)
        env.ledger.acquire(service, owner="run-2", now=env.clock.now(), lease_seconds=600, wall=env.wall(),
                           rollout=record.rollout_id, phase=RolloutPhase.PENDING)
        env.router.weights = Weights.canary_at(25)
        while watch() is None:
            env.clock.sleep(2)
        return None

    with caplog.at_level(logging.WARNING), pytest.raises(RolloutMovedOn, match="stands down"):
        progressive_on(env, MOVED_TRAFFIC_SPEC, asked)
    record = env.ledger.get(service)
    assert env.router.weights == Weights.canary_at(25), "the other run's traffic was moved"
    assert record.owner == "run-2" and "rollback-start" not in kinds(env), (record.owner, kinds(env))
    assert any("stands down" in r.getMessage() and "run-2" in r.getMessage() for r in caplog.records), caplog.text


def test_a_new_rollout_is_announced_before_any_traffic_moves_and_a_resume_or_refusal_is_not():
    """The seed's communication plan tells people before the deployment; a progressive rollout's
    first notice was its first stage's, sent after 5 % of the users were already on the new version."""
    env = env_with_ledger()
    sent: list[tuple[str, str, int]] = []
    notify = env.notifier.notify

    def watched(subject, message):
        sent.append((subject, message, env.router.weights.canary))
        return notify(subject, message)

    env.notifier.notify = watched
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    subject, message, canary_then = sent[0]
    record = env.ledger.get(env.targets.canary_service)
    assert subject == f"Rollout starting: {env.targets.canary_service}" and canary_then == 0, sent[0]
    assert f"alice started rollout {record.rollout_id} of {IMAGE}" in message, message
    assert "week 1: 5%; week 2: 25%, 50%; week 3: 75%, 100% then decommission" in message, message
    # The Monday schedule starts each phase whether anyone is at work: an unanswered pause rolls back.
    assert message.endswith("automatic rollback on failure; approval before 25%, 100%: a pause unanswered for 1 h "
                            "rolls the rollout back (approvals.on_timeout: rollback; set approvals.on_timeout: hold "
                            "to keep the weights and ask again instead)."), message
    assert [s for s, _m, _w in sent].count(subject) == 1
    env.clock.sleep(WEEK)
    assert advance_on(env, auto_approve("carol"), "cron-1").outcome == "holding"
    with pytest.raises(RolloutInProgress):  # another image while this one is unfinished: nothing starts
        progressive_on(env, full_spec().model_copy(update={"image": IMAGE.replace("2.0.0", "2.1.0")}),
                       auto_approve("bob"), owner="run-3")
    assert [s for s, _m, _w in sent].count(subject) == 1, [s for s, _m, _w in sent]


def test_traffic_moved_by_hand_before_a_shifts_flag_write_rolls_back_at_once_not_after_the_stage():
    """The weights moved by hand after the run's pre-shift check and before the shift's flag
    write: the run rolls back, recorded in the ledger, right after the flags moved, rather than
    baking the 25 % stage with its flags on users of the stable version until the next check."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = env_with_ledger()
    env.flags = FakeFlagStore([FlagState(feature="new_checkout")])
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)],
                       flags=[FlagBinding(feature="new_checkout")], monitor_seconds=0, verify_timeout_seconds=0.2)
    real_get, moved = env.flags.get, []

    def get(feature):
        if not moved and env.router.weights == Weights.canary_at(25):
            moved.append(env.clock.now())
            env.router.weights = Weights(stable=100, canary=0)  # by hand, in the console
        return real_get(feature)

    env.flags.get = get
    result = progressive_on(env, spec, auto_approve("alice"))
    assert result.outcome == "rolled_back" and "moved by someone else" in result.reason, result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert record.last_transition("rollback").at - moved[0] < 60
    assert not env.flags.get("new_checkout").enabled


class ReleaseThrottled(FakeLedger):
    """A FakeLedger on which DynamoDB throttles every lease release past botocore's retries."""

    throttled = False

    def release(self, service, *, owner):
        if not self.throttled:
            return super().release(service, owner=owner)
        from botocore.exceptions import ClientError
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Throughput exceeds the current capacity of your table"}}, "UpdateItem")


@pytest.mark.parametrize("where", ["resume", "next phase"])
def test_a_drift_refusal_stays_the_refusal_when_dynamodb_throttles_the_lease_release(caplog, where):
    """The run found the traffic moved by hand and refused, then DynamoDB throttled the write
    giving its lease back: the run failed with botocore's error instead, which the hooks roll back
    on (they leave a drift refusal alone). The refusal stands; the log says the lease lapses."""
    env = fake_environment()
    env.ledger = ReleaseThrottled()
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    env.router.weights = Weights(stable=60, canary=40)  # someone changed the ALB by hand
    env.ledger.throttled = True
    with caplog.at_level(logging.WARNING), pytest.raises(DriftDetected, match="holds 60/40"):
        if where == "resume":
            progressive_on(env, full_spec(), auto_approve(), owner="run-2")
        else:
            env.clock.sleep(WEEK)
            advance_on(env, auto_approve(), "cron-1")
    said = [r.getMessage() for r in caplog.records if "could not give this run's lease" in r.getMessage()]
    assert said and "ProvisionedThroughputExceededException" in said[0], caplog.text
    assert env.ledger.get(env.targets.canary_service).weekly_phase_index == 0


class RenewalsThrottled(FakeLedger):
    """A FakeLedger on which DynamoDB throttles lease renewals past botocore's retries: with
    ``after_pass``, the one right after the first stage's pass is recorded (the check before the
    shift); else the first ``at_5`` renewals after one while 5 % bakes (None: all from then on)."""

    def __init__(self, env, *, after_pass=False, at_5=0):
        super().__init__()
        self.env, self.after_pass, self.at_5 = env, after_pass, at_5
        self.log = []  # (renewed | throttled, when)

    def record(self, service, **kwargs):
        if kwargs.get("stage_passed") is True and self.after_pass is True:
            self.after_pass = "next"
        return super().record(service, **kwargs)

    def _throttles(self) -> bool:
        if self.after_pass == "next":
            self.after_pass = False
            return True
        if self.env.router.weights.canary != 5 or not any(k == "renewed" for k, _t in self.log):
            return False
        if self.at_5 is None:
            return True
        self.at_5 -= 1
        return self.at_5 >= 0

    def acquire(self, service, **kwargs):
        from botocore.exceptions import ClientError
        if self._throttles():
            self.log.append(("throttled", self.env.clock.now()))
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Throughput exceeds the current capacity"}}, "UpdateItem")
        taken = super().acquire(service, **kwargs)
        if self.env.router.weights.canary == 5:
            self.log.append(("renewed", self.env.clock.now()))
        return taken


def renewals_spec() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)],
                       monitor_seconds=0)


def test_one_lease_renewal_dynamodb_throttles_mid_bake_does_not_fail_a_healthy_run(caplog):
    """A look's renewal of the 600 s lease failed on throttling past botocore's retries: the run
    failed, and its hook rolled the healthy rollout back. Minutes were left on the lease: the run
    says so and goes on, and renews it at the next look."""
    env = fake_environment()
    env.ledger = RenewalsThrottled(env, at_5=1)
    with caplog.at_level(logging.INFO):
        result = progressive_on(env, renewals_spec(), auto_approve())
    assert result.outcome == "promoted", result.reason
    assert [k for k, _t in env.ledger.log].count("throttled") == 1
    said = [r.getMessage() for r in caplog.records if "could not renew the rollout's lease" in r.getMessage()]
    assert said and "ProvisionedThroughputExceededException" in said[0] and "lapses in" in said[0], said
    assert any("renewed the rollout's lease again" in r.getMessage() for r in caplog.records), caplog.text


def test_the_check_before_a_shift_dynamodb_throttles_is_made_again_before_the_traffic_moves(caplog):
    """The renewal right before a shift is also the check that nobody began rolling the rollout
    back: refused by DynamoDB, the shift waits for the next look, whose check passes, and says so."""
    env = fake_environment()
    env.ledger = RenewalsThrottled(env, after_pass=True)
    with caplog.at_level(logging.INFO):
        result = progressive_on(env, renewals_spec(), auto_approve())
    assert result.outcome == "promoted", result.reason
    throttled = [t for k, t in env.ledger.log if k == "throttled"]
    assert len(throttled) == 1, env.ledger.log
    record = env.ledger.get(env.targets.canary_service)
    shift = next(t for t in record.history if t.kind == "shift" and t.to_weights.canary == 25)
    assert shift.at > throttled[0], "the traffic moved without the check that nobody began a rollback"
    said = [r.getMessage() for r in caplog.records if "could not renew the rollout's lease" in r.getMessage()]
    assert said and "before shifting to 25%" in said[0] and "the shift waits for the next look" in said[0], said


def test_lease_renewals_dynamodb_keeps_refusing_fail_the_run_before_the_lease_lapses():
    """Refused at every look: the run fails (its hook rolls back) before another run could take the
    rollout over, not at the first refusal."""
    from botocore.exceptions import ClientError

    env = fake_environment()
    env.ledger = RenewalsThrottled(env, at_5=None)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        progressive_on(env, renewals_spec(), auto_approve())
    log = env.ledger.log
    renewed = max(t for k, t in log if k == "renewed")
    failed = [t for k, t in log if k == "throttled"]
    assert len(failed) > 3, log
    assert 0 < failed[-1] - renewed < 600, log


def test_traffic_moved_by_hand_is_a_finding_the_run_acts_on_not_a_failed_task(caplog):
    """The drift check read the weights again through the `verify-weights` task, so every drift
    found also showed a red failed task with a WeightMismatch traceback at ERROR level in the UI,
    beside the run that rolled back as it should. The rollback is what the run says."""
    env = env_with_ledger()
    moved = []

    def before(name, args, kwargs):
        if name == "observe" and not moved and env.router.weights.canary == 5:
            moved.append(env.clock.now())
            env.router.weights = Weights(stable=70, canary=30)  # by hand, in the console

    env.metrics = Intercept(env.metrics, before)
    with caplog.at_level(logging.INFO):
        result = progressive_on(env, MOVED_TRAFFIC_SPEC, auto_approve())
    assert moved and result.outcome == "rolled_back" and "moved by someone else" in result.reason, result.reason
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [m for m in errors if "WeightMismatch" in m or "verify-weights" in m], errors
    assert not [r for r in caplog.records if "Finished in state Failed" in r.getMessage()], caplog.text


class ThrottledAfterApproval(FakeLedger):
    """A FakeLedger on which DynamoDB throttles the first lease renewal after an approval is recorded."""

    def __init__(self):
        super().__init__()
        self.armed, self.throttled = False, 0

    def record(self, service, **kwargs):
        transition = kwargs.get("transition")
        self.armed = self.armed or (transition is not None and transition.kind == "approve" and not self.throttled)
        return super().record(service, **kwargs)

    def acquire(self, service, **kwargs):
        if self.armed:
            from botocore.exceptions import ClientError
            self.armed, self.throttled = False, self.throttled + 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Throughput exceeds the current capacity"}}, "UpdateItem")
        return super().acquire(service, **kwargs)


def test_one_lease_renewal_throttled_after_a_long_approval_pause_does_not_fail_the_run():
    """The answer, given 50 minutes into the pause, wrote the lease again: the first renewal after
    it, refused by DynamoDB, is one lost renewal with the whole lease left, not a lapsed lease."""
    env = fake_environment()
    env.ledger = ThrottledAfterApproval()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=25, bake_seconds=600),
                                            Stage(weight=100, bake_seconds=600, approval=True)], monitor_seconds=0)
    approve = ApprovalAnswer(action="approve", approver="alice", comment="ok")
    result = progressive_on(env, spec, scripted(approve, clock=env.clock, after_seconds=3000))
    assert env.ledger.throttled == 1
    assert result.outcome == "promoted", result.reason


class RenewalsDenied(RenewalsThrottled):
    """A FakeLedger on which every lease renewal from one while 5 % bakes on is refused for good."""

    def acquire(self, service, **kwargs):
        from botocore.exceptions import ClientError
        if self._throttles():
            self.log.append(("denied", self.env.clock.now()))
            raise ClientError({"Error": {"Code": "AccessDeniedException",
                                         "Message": "not authorized to perform: dynamodb:UpdateItem"}}, "UpdateItem")
        return super().acquire(service, **kwargs)


def test_a_lease_renewal_dynamodb_refuses_for_good_fails_the_run_at_once():
    """A renewal refused by a missing permission is refused again at every look: the run fails at
    the first (its hook rolls back), not a lease later after looking on and shifting nothing."""
    env = fake_environment()
    env.ledger = RenewalsDenied(env, at_5=None)
    with pytest.raises(Exception, match="AccessDeniedException"):
        progressive_on(env, renewals_spec(), auto_approve())
    assert [k for k, _t in env.ledger.log].count("denied") == 1, env.ledger.log


class RenewalsThrottledOnceArmed(FakeLedger):
    """A FakeLedger on which DynamoDB throttles every lease renewal once ``armed``; ``tries``: when
    each was made, with when the lease as stored lapses."""

    def __init__(self, env):
        super().__init__()
        self.env, self.armed, self.tries = env, False, []

    def acquire(self, service, **kwargs):
        if self.armed:
            from botocore.exceptions import ClientError
            self.tries.append((self.env.wall(), self.get(service).lease_expires))
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                         "Message": "Throughput exceeds the current capacity"}}, "UpdateItem")
        return super().acquire(service, **kwargs)


def test_a_refused_first_renewal_counts_the_lease_from_its_last_write_not_from_the_first_look(monkeypatch):
    """The lease was last written 560 s before the stages began (the steps before them took that
    long): the first look's renewal, throttled, took the lease for one written as the stages began,
    and the run went on trying to renew it after it had lapsed, when another run may hold it."""
    from botocore.exceptions import ClientError

    import flows.progressive as progressive

    env = fake_environment()
    env.ledger = RenewalsThrottledOnceArmed(env)
    real = progressive.judge_rollback

    def slow(*args, **kwargs):
        env.clock.sleep(560)
        env.ledger.armed = True
        return real(*args, **kwargs)

    monkeypatch.setattr(progressive, "judge_rollback", slow)
    with pytest.raises(ClientError, match="ProvisionedThroughputExceededException"):
        progressive_on(env, renewals_spec(), auto_approve())
    assert env.ledger.tries and all(at < lapses for at, lapses in env.ledger.tries), env.ledger.tries
