"""Edges of weekly phases, resume/reconcile and post-promotion monitoring: kills, races, blind windows."""

from __future__ import annotations

import pytest

from flows.progressive import DriftDetected
from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.fakes import FakeMetrics, steady
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.test_progressive_fakes import (
    IMAGE, WEEK, Intercept, Killed, advance_on, dies_recording_the_shift_to, env_with_ledger, full_spec, killed_while_baking, kinds,
    progressive_on, shifts,
)


def _accept(pause, summary):
    return ApprovalAnswer(action="approve", approver="bob", comment="looks fine to me")


def test_a_shift_after_a_person_accepted_an_inconclusive_stage_is_not_drift_on_resume():
    """A person accepts an inconclusive 5% stage; the run shifts to 50% and dies before recording it.
    The resumed run must recognise its own shift (README: resumes with no shift repeated or skipped)."""
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)])
    env = env_with_ledger()
    env.metrics = FakeMetrics(env.router, steady(2.0, 0.001, 0.0))  # too few canary requests: inconclusive
    real = env.ledger
    env.ledger = Intercept(real, dies_recording_the_shift_to(50))
    with pytest.raises(Killed):
        progressive_on(env, spec, _accept)
    env.ledger = real
    assert env.router.weights.canary == 50 and "approve" in kinds(env)
    env.clock.sleep(601)
    try:
        result = progressive_on(env, spec, _accept, owner="run-2")
    except DriftDetected as refused:
        pytest.fail(f"the run's own shift, made after a recorded acceptance, was refused as drift: {refused}")
    assert result.outcome == "promoted" and shifts(env) == [5, 50, 100]


def _phased_monitored_spec() -> RolloutSpec:
    return RolloutSpec(
        image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=3600,
        phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,), decommission=True)],
    )


def test_the_weekly_watchdog_finishes_a_monitoring_window_whose_run_died():
    """Phase 2 (100 % + decommission) is run by the schedule; its run dies while monitoring.
    Nothing but the schedule runs this rollout, so the schedule must finish the window, or the
    old service would stay up, unwatched, and never be decommissioned."""
    env = env_with_ledger()
    spec = _phased_monitored_spec()
    assert progressive_on(env, spec, auto_approve(), phased=True).outcome == "holding"
    env.clock.sleep(WEEK)
    process: dict = {}
    real = (env.metrics, env.ledger)

    def dies_at_the_10th_monitoring_check(name, args, kwargs):
        if process.get("dead"):
            raise Killed(name)
        if name == "observe" and real[1].get(env.targets.canary_service).phase is RolloutPhase.PROMOTED:
            process["checks"] = process.get("checks", 0) + 1
            if process["checks"] == 10:
                process["dead"] = True
                raise Killed("the node running the last phase is lost while monitoring")

    env.metrics = Intercept(real[0], dies_at_the_10th_monitoring_check)
    env.ledger = Intercept(real[1], dies_at_the_10th_monitoring_check)
    with pytest.raises(Killed):
        advance_on(env, auto_approve(), "cron-1")
    env.metrics, env.ledger = real
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED
    assert env.deployer.services[env.targets.stable_service].desired > 0

    env.clock.sleep(WEEK)  # the lease ran out long ago, the window too
    advance_on(env, auto_approve(), "cron-2")
    assert "decommission" in kinds(env), (
        f"a week later the old service still runs with {env.deployer.services[env.targets.stable_service].desired} "
        f"tasks and nothing was recorded after {kinds(env)[-3:]}"
    )
    assert env.deployer.services[env.targets.stable_service].desired == 0


def test_a_window_in_which_no_check_could_measure_anything_does_not_decommission():
    """CloudWatch fails every check of the hour: nothing was watched, so the old service is not
    scaled to zero as if the window had passed cleanly."""
    from flows.monitor import run_monitor
    from prefect import flow
    from tests.flows.test_monitor import SPEC, promoted

    @flow
    def monitor_blind(env):
        return run_monitor(env, SPEC, window_seconds=1800, stable_desired=4)

    env = promoted(canary_error_rate=0.001)
    env.metrics.error = "ThrottlingException: Rate exceeded"
    result = monitor_blind(env)
    assert result.outcome != "decommissioned", f"{result.reason} after {result.checks} checks, none of which measured"
    assert env.deployer.services[env.targets.stable_service].desired == 4


def test_weights_moved_by_hand_to_the_next_phases_stage_are_drift_at_the_phase_boundary():
    """Week 2 ends holding 50 %. During the week someone sets the ALB to 75 % by hand. The
    run of week 2 stopped at its phase end and was never entitled to that shift, so Monday's
    schedule refuses the drift instead of recording it as the rollout's own."""
    from tests.flows.test_progressive_fakes import full_spec

    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.sleep(WEEK)
    assert advance_on(env, auto_approve("carol"), "cron-1").outcome == "holding"
    record = env.ledger.get(env.targets.canary_service)
    assert (record.phase, record.weights.canary, record.weekly_phase_passed) == (RolloutPhase.PAUSED, 50, True)
    env.router.weights = Weights(stable=25, canary=75)  # moved by hand while the rollout holds
    env.clock.sleep(WEEK)
    try:
        advance_on(env, auto_approve("carol"), "cron-2")
    except DriftDetected:
        return
    taken = next(t for t in env.ledger.get(env.targets.canary_service).history if t.actor == "reconcile")
    pytest.fail(f"hand-moved weights taken as the rollout's own shift: {taken.actor}: {taken.comment} "
                f"({taken.from_weights} -> {taken.to_weights}); then shifts {shifts(env)}")


def test_a_rollback_landing_as_the_window_ends_is_not_followed_by_a_decommission():
    """On-call rolls back (`rollway abort`) just as the monitoring window ends: after the monitor
    read the weights (0/100) and before it scaled the old service down. The monitor looks again
    after scaling down and puts the old service back, which now carries all the traffic."""
    from flows.rollback import rollback_recorded
    from tests.flows.test_progressive_fakes import monitored_spec

    env = env_with_ledger()
    real = env.deployer
    stable = env.targets.stable_service
    fired: dict = {}

    def oncall_aborts_just_before_the_scale_down(name, args, kwargs):
        if name == "update_service" and args and args[0] == stable and kwargs.get("desired") == 0 and not fired:
            fired["yes"] = True
            env.deployer = real  # the rollback flow, run by hand, acts on the same services
            rollback_recorded(env, "on-call: checkout errors", actor="oncall")
            env.deployer = wrapped

    wrapped = Intercept(real, oncall_aborts_just_before_the_scale_down)
    env.deployer = wrapped
    progressive_on(env, monitored_spec(), auto_approve())
    env.deployer = real
    assert fired, "the monitor reached its decommission"
    assert env.router.weights == Weights(stable=100, canary=0), "the rollback put all traffic on the old service"
    assert env.deployer.services[stable].desired > 0, (
        f"{stable} scaled to 0 while it carries {env.router.weights.stable}% of traffic; history ends {kinds(env)[-3:]}"
    )


def test_a_skip_ahead_shift_records_the_stage_it_came_from():
    """bob approves skipping 25 % and the run goes 5 % -> 50 %: the history's shift comes from
    stage 0 (5 %), and nothing records the skipped 25 % as passed."""
    from tests.flows.test_progressive_fakes import APPROVAL_SPEC, SKIP_TO_50

    env = env_with_ledger()
    assert progressive_on(env, APPROVAL_SPEC, lambda p, s: SKIP_TO_50).outcome == "promoted"
    jump = next(t for t in env.ledger.get(env.targets.canary_service).history
                if t.kind == "shift" and t.to_weights.canary == 50)
    assert (jump.from_weights.canary, jump.from_stage, jump.to_stage) == (5, 0, 2), jump
    assert "25% passed" not in (jump.comment or ""), f"the skipped stage is recorded as passed: {jump.comment!r}"


def test_an_unphased_run_that_died_is_not_held_for_weeks_by_the_watchdog():
    """alice runs every stage now (phased=false); the run dies while 75 % bakes. The ledger
    records that the run was unphased, so the weekly watchdog resumes it the same way and
    promotes it, instead of holding it at 75 % for two more weeks as if it were week 1."""
    from flows.progressive import advance
    from prefect import flow
    from tests.flows.test_progressive_fakes import full_spec

    @flow
    def watchdog(env, owner):
        return advance(env, auto_approve("carol"), owner=owner, owner_finished=lambda owner: True)

    env = env_with_ledger()
    killed_while_baking(env, 75, auto_approve("alice"), phased=False)
    assert shifts(env) == [5, 25, 50, 75]
    env.clock.sleep(601)
    outcomes = [watchdog(env, "cron-1").outcome]
    if outcomes[-1] != "promoted":
        env.clock.sleep(WEEK)
        outcomes.append(watchdog(env, "cron-2").outcome)
    record = env.ledger.get(env.targets.canary_service)
    assert outcomes[-1] == "promoted", (
        f"resumed and one week later: {outcomes}, still at {record.weights} in phase "
        f"{record.weekly_phase_index + 1}; shifts {shifts(env)}"
    )


def _holding_with_a_spec_todays_rules_refuse():
    """Week 1 holds at 5 %; its recorded spec has a 30-s analysis interval, which rollway
    accepted before periods had to be whole minutes."""
    import json

    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))])
    env = env_with_ledger()
    assert progressive_on(env, spec, auto_approve(), phased=True).outcome == "holding"
    service = env.targets.canary_service
    old = json.loads(spec.model_dump_json())
    old["analysis"]["interval_seconds"] = 30
    rollouts = env.ledger._rollouts[service]
    rollouts[-1] = rollouts[-1].model_copy(update={"spec_json": json.dumps(old)})
    with pytest.raises(ValueError):
        RolloutSpec.from_record(env.ledger.get(service).spec_json)
    return env


def test_a_rollout_recorded_under_older_rules_can_still_be_rolled_back():
    """Every rollback path read the recorded spec whole before moving traffic: a field rule
    tightened later left such a rollout at 5 % with no way back but editing DynamoDB."""
    from flows.rollback import rollback_recorded
    from prefect import flow

    @flow
    def abort(env):
        return rollback_recorded(env, "operator aborts", actor="bob")

    env = _holding_with_a_spec_todays_rules_refuse()
    assert abort(env).weights == Weights(stable=100, canary=0)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_the_watchdog_finishes_an_interrupted_rollback_of_such_a_rollout():
    from rollway.ledger import begin_rollback

    env = _holding_with_a_spec_todays_rules_refuse()
    begin_rollback(env.ledger, env.targets.canary_service, actor="bob", reason="aborted, then the process died",
                   now=env.clock.now())
    result = advance_on(env, auto_approve(), "cron-1")
    assert result.outcome == "rolled_back" and env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_phased_run_by_hand_at_a_completed_phase_says_so_and_changes_nothing():
    """A person starts progressive_rollout (phased, the form's default) on a rollout whose weekly
    phase is complete and holding. It used to record that phase complete a second time (another
    "phase" transition) and tell people again over SNS that it was complete."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    service = env.targets.canary_service
    before, told = env.ledger.get(service), list(env.notifier.messages)
    again = progressive_on(env, full_spec(), auto_approve("alice"), owner="run-2", phased=True)
    after = env.ledger.get(service)
    assert after.history == before.history and after.owner is None, [t.kind for t in after.history]
    assert env.notifier.messages == told
    assert again.outcome == "holding" and "week 1" in again.reason and "complete" in again.reason, again.reason


def test_a_phased_run_by_hand_at_a_completed_phase_says_when_the_next_one_is_already_due():
    """Run again a week later, with no advance_phase run since (under `make up` the cron fires on
    the wall calendar): it said the next phase "may start from" a day already past, and that a
    person's early start could start it "sooner", not that it was due and how to start it now."""
    env = env_with_ledger()
    spec = full_spec().model_copy(update={"weekly_timezone": "Europe/Berlin"})
    assert progressive_on(env, spec, auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.sleep(WEEK)
    again = progressive_on(env, spec, auto_approve("alice"), owner="run-2", phased=True)
    assert again.outcome == "holding" and shifts(env) == [5]
    assert "The next phase, week 2, has been due since Mon 2027-01-18 08:00 CET" in again.reason, again.reason
    assert "run advance_phase to start it now" in again.reason and "sooner" not in again.reason, again.reason
