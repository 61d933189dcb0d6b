"""progressive_rollout's logic on fakes: ledger, phases, locks, drift, resume after a kill."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.progressive import DriftDetected, PhaseRefused, advance, run_progressive
from flows.rollback import rollback_recorded
from rollway.approvals import ApprovalAnswer, auto_approve, scripted
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.ledger import LockHeld, RolloutInProgress
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
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
def progressive_on(env, spec, approver, owner="run-1", phased=False, adopt=False):
    return run_progressive(env, spec, approver, owner=owner, actor="alice", phased=phased, adopt_live_weights=adopt)


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
    assert kinds(env)[-2:] == ["promote", "decommission"]
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert record.owner is None  # released


def test_rejection_rolls_back_and_is_recorded():
    env = env_with_ledger()
    result = progressive_on(env, full_spec(), scripted(ApprovalAnswer(action="reject", approver="bob", comment="no")))
    assert result.outcome == "rolled_back"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert kinds(env)[-3:] == ["reject", "rollback-start", "rollback"]
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


def test_second_rollout_of_the_service_is_refused():
    env = env_with_ledger()
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    other = RolloutSpec(image="webordinary/edit-container:3.0.0")
    with pytest.raises(RolloutInProgress, match="rolling out"):
        progressive_on(env, other, auto_approve(), owner="run-2")


def test_a_live_lease_locks_out_a_second_run():
    env = env_with_ledger()
    service = env.targets.canary_service
    progressive_on(env, full_spec(), auto_approve(), phased=True)
    env.ledger.acquire(service, owner="run-1", now=env.clock.now(), lease_seconds=600)
    with pytest.raises(LockHeld):
        progressive_on(env, full_spec(), auto_approve(), owner="run-2")


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


class Killed(BaseException):
    """Stands in for the process dying at a given port call.

    A BaseException, like the KeyboardInterrupt or SystemExit of a real kill: Prefect does
    not retry it, and no code path of rollway catches it.
    """


class KillAt:
    """Wraps a port; the n-th call (over all wrapped ports) raises Killed."""

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
            if self._counter["n"] == self._counter["kill_at"]:
                raise Killed(f"killed at call {self._counter['n']}: {name}")
            return attr(*args, **kwargs)

        return call


def _run_with_kill(kill_at: int):
    env = env_with_ledger()
    counter = {"n": 0, "kill_at": kill_at}
    real = (env.router, env.deployer, env.ledger)
    env.router, env.deployer, env.ledger = (KillAt(p, counter) for p in real)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)])
    killed = False
    try:
        progressive_on(env, spec, auto_approve(), owner="run-1")
    except Killed:
        killed = True
    env.router, env.deployer, env.ledger = real
    return env, spec, killed, counter.get("log", [])


def step_boundaries(calls: list[str]) -> list[int]:
    """1-based positions of every write and of the first call of each kind of read.

    A kill just before a write is the dangerous kind (the step before it happened, this one
    did not); reads are repeated on every stage, so their first occurrence stands for all.
    """
    writes = {"set_weights", "update_service", "register_revision", "create", "record", "release"}
    return [i + 1 for i, name in enumerate(calls) if name in writes or name not in calls[:i]]


def test_resume_after_a_kill_at_every_step():
    _, _, killed, calls = _run_with_kill(kill_at=0)
    assert not killed and len(calls) > 20
    for kill_at in step_boundaries(calls):
        env, spec, killed, _ = _run_with_kill(kill_at)
        assert killed, kill_at
        env.clock.sleep(601)  # the dead run's lease runs out
        result = progressive_on(env, spec, auto_approve(), owner="run-2")
        assert result.outcome == "promoted", (kill_at, result.reason)
        assert env.router.weights == Weights(stable=0, canary=100)
        assert shifts(env) == [5, 50, 100], (kill_at, kinds(env))


def _reject(who: str) -> ApprovalAnswer:
    return ApprovalAnswer(action="reject", approver=who, comment="error budget")


def _rejected_run_with_kill(kill_at: int):
    """The 5% stage passes, the person rejects at the pause before 50%, the run dies at call ``kill_at``."""
    env = env_with_ledger()
    counter = {"n": 0, "kill_at": kill_at}
    real = (env.router, env.deployer, env.ledger)
    env.router, env.deployer, env.ledger = (KillAt(p, counter) for p in real)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=50, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120)])
    killed = False
    try:
        progressive_on(env, spec, scripted(_reject("bob")), owner="run-1")
    except Killed:
        killed = True
    env.router, env.deployer, env.ledger = real
    return env, spec, killed, counter.get("log", [])


def test_a_rollback_killed_at_any_step_is_finished_on_resume():
    env, _, killed, calls = _rejected_run_with_kill(kill_at=0)
    assert not killed
    assert kinds(env)[-3:] == ["reject", "rollback-start", "rollback"], "intent is recorded before acting"
    # Kills before the answer are the promotion path's (test_resume_after_a_kill_at_every_step);
    # from the recorded rejection on, every call is a point the run may die at.
    records = [i for i, name in enumerate(calls) if name == "record"]
    after_intent = 0
    for kill_at in range(records[-3] + 1, len(calls) + 1):
        env, spec, killed, _ = _rejected_run_with_kill(kill_at)
        assert killed, kill_at
        pending = env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
        after_intent += pending
        env.clock.sleep(601)  # the dead run's lease runs out
        env.router.calls.clear()
        result = progressive_on(env, spec, scripted(_reject("carol")), owner="run-2")
        assert result.outcome == "rolled_back", (kill_at, result.reason)
        assert env.router.weights == Weights(stable=100, canary=0), kill_at
        assert env.deployer.describe(env.targets.canary_service).desired == 0, kill_at
        record = env.ledger.get(env.targets.canary_service)
        assert record.phase is RolloutPhase.ROLLED_BACK, (kill_at, kinds(env))
        if pending:
            # The resumed run only finishes the rollback: it never moves traffic toward the canary.
            assert "interrupted" in result.reason and "bob" in result.reason, result.reason
            raised = [c for c in env.router.calls if c.startswith("set_weights") and c != "set_weights 100/0"]
            assert raised == [], (kill_at, env.router.calls)
            assert kinds(env).count("rollback") == 1 and kinds(env)[-1] == "rollback"
    assert after_intent >= 3, "kills fell inside the rollback, between its intent and its record"


def test_advance_finishes_an_interrupted_rollback_instead_of_refusing():
    env, spec, killed, calls = _rejected_run_with_kill(kill_at=0)
    # Kill right after the intent is written: the first write after the reject.
    env, spec, killed, _ = _rejected_run_with_kill(_first_call_after_intent(calls))
    assert killed and env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLING_BACK
    env.clock.sleep(WEEK)
    result = advance_on(env, scripted(), owner="schedule-1")
    assert result is not None and result.outcome == "rolled_back"
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_new_image_first_finishes_the_interrupted_rollback_of_the_old_one():
    _, _, _, calls = _rejected_run_with_kill(kill_at=0)
    env, spec, killed, _ = _rejected_run_with_kill(_first_call_after_intent(calls))
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
    # The last two records are the intent and the completion; kill on the call after the intent.
    return records[-2] + 2


def monitored_spec() -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=3600,
                       phases=[WeeklyPhase(name="all stages", weights=(5, 100), decommission=True)])


class Mortal:
    """Wraps a port of one process; once the process is dead, every call raises Killed.

    ``kill_after``: this port's call that kills the process. A killed process makes no more
    calls, so no clean-up in a ``finally`` reaches AWS and a lease it held stays until it expires.
    """

    def __init__(self, inner, process: dict, kill_after: int | None = None):
        self._inner, self._process, self._kill_after, self._calls = inner, process, kill_after, 0

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._calls += 1
            if self._calls == self._kill_after:
                self._process["dead"] = True
            if self._process.get("dead"):
                raise Killed(f"process killed ({name})")
            return attr(*args, **kwargs)

        return call


def _killed_while_monitoring():
    """A rollout promoted and killed twenty checks before its monitoring window ends."""
    spec = monitored_spec()
    env = env_with_ledger()
    progressive_on(env, spec, auto_approve())
    checks_in_full_run = env.metrics.calls

    env = env_with_ledger()
    process: dict = {}
    real = (env.metrics, env.ledger)
    env.metrics = Mortal(real[0], process, kill_after=checks_in_full_run - 20)
    env.ledger = Mortal(real[1], process)
    with pytest.raises(Killed):
        progressive_on(env, spec, auto_approve())
    env.metrics, env.ledger = real
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED
    assert record.owner == "run-1", "the monitoring run held the lease when it died"
    assert env.deployer.services[env.targets.stable_service].desired > 0, "killed before the decommission"
    return env, spec


def test_a_second_run_is_refused_while_the_dead_monitoring_runs_lease_lasts():
    env, spec = _killed_while_monitoring()
    before = env.metrics.calls
    with pytest.raises(LockHeld):
        progressive_on(env, spec, auto_approve(), owner="run-2")
    assert env.metrics.calls == before, "the refused run watched nothing"
    assert env.deployer.services[env.targets.stable_service].desired > 0


def test_a_run_killed_while_monitoring_is_resumed_for_the_rest_of_the_window():
    env, spec = _killed_while_monitoring()
    env.clock.sleep(601)  # the dead run's lease runs out
    before, started = env.metrics.calls, env.clock.now()
    result = progressive_on(env, spec, auto_approve(), owner="run-2")
    assert result.outcome == "promoted"
    assert kinds(env)[-1] == "decommission"
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert env.ledger.get(env.targets.canary_service).owner is None, "the lease was released"
    # Only what was left of the hour (20 checks, less the 10 minutes waited) is watched again.
    assert env.metrics.calls - before <= 11, env.metrics.calls - before
    assert env.clock.now() - started <= 10 * 60 + 1


def test_a_second_run_during_monitoring_is_refused_and_the_first_finishes():
    env = env_with_ledger()
    spec = monitored_spec()
    real = env.metrics
    seen: dict = {}

    class SecondRunMidWindow:
        """At the 5th check after promotion, another run of the same rollout is started."""

        def __getattr__(self, name):
            attr = getattr(real, name)
            if name != "observe":
                return attr

            def observe(*args, **kwargs):
                record = env.ledger.get(env.targets.canary_service)
                if record.phase is RolloutPhase.PROMOTED:
                    seen["checks"] = seen.get("checks", 0) + 1
                    if seen["checks"] == 5:
                        assert record.owner == "run-1", "the watching run holds the lease"
                        with pytest.raises(LockHeld):
                            progressive_on(env, spec, auto_approve(), owner="run-2")
                        seen["refused"] = True
                return attr(*args, **kwargs)

            return observe

    env.metrics = SecondRunMidWindow()
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
    assert kinds(env)[-2:] == ["rollback-start", "rollback"]
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


@flow
def rollback_recorded_on(env, reason):
    return rollback_recorded(env, reason, actor="state hook (failed)")


def test_a_hook_rollback_inside_the_window_is_recorded_and_after_it_is_not():
    env, _ = _killed_while_monitoring()
    rollback_recorded_on(env, "run died while monitoring")
    assert kinds(env)[-2:] == ["rollback-start", "rollback"]
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK

    # A finished, decommissioned rollout is history: a later rollback (say, of an unrelated
    # canary run) must not rewrite it or restore the task definition it recorded.
    env = env_with_ledger()
    progressive_on(env, monitored_spec(), auto_approve())
    before = kinds(env)
    assert before[-1] == "decommission"
    rollback_recorded_on(env, "canary run failed")
    assert kinds(env) == before
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED
