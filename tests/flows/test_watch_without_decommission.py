"""Post-promotion monitoring when nothing is decommissioned: the canary flow, and progressive
rollouts whose plan keeps the old service. The window is watched, closed in the ledger, and
resumed by the watchdog if its run dies; a regression inside it rolls back."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import run_canary
from rollway.approvals import auto_approve, scripted
from rollway.fakes import FakeLedger, FakeMetrics, steady
from rollway.ledger import RolloutRecord, Transition, monitoring_owed, open_for_rollback
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_progressive_fakes import (
    IMAGE, _killed_while_monitoring, env_with_ledger, kinds, progressive_on,
)

HOUR = 3600.0


def degrades_after_promotion(delay: float, bad_rate: float = 0.08):
    """Traffic with a healthy canary that starts failing ``delay`` seconds after it first serves
    100 %: a regression that only the post-promotion window can catch."""
    healthy = steady(5000.0, 0.001, 0.0)
    bad = steady(5000.0, 0.001, bad_rate)
    seen: dict = {}

    def sample(weights: Weights, t: float):
        if weights.canary == 100:
            seen.setdefault("full", t)
        failing = "full" in seen and t >= seen["full"] + delay
        return (bad if failing else healthy)(weights, t)

    return sample


def unphased_spec(monitor_seconds: float = HOUR) -> RolloutSpec:
    # Stages without a phase plan: one phase, which does not decommission.
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)],
                       monitor_seconds=monitor_seconds)


@flow
def canary_on(env, rollout: RolloutSpec, finalize: bool = False):
    return run_canary(env, rollout, scripted(), finalize=finalize)


def test_the_canary_flow_rolls_back_a_regression_inside_its_monitoring_window():
    env = fake_environment()
    env.metrics = FakeMetrics(env.router, degrades_after_promotion(delay=900))
    result = canary_on(env, unphased_spec())
    assert result.outcome == "rolled_back" and "monitoring after promotion" in result.reason
    assert [s.weights.canary for s in result.stages] == [5, 100], "both stages passed before the regression"
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[env.targets.stable_service].desired == 4, "the old service took the traffic back"
    assert env.deployer.services[env.targets.canary_service].task_definition == STABLE_TD
    subjects = [s for s, _ in env.notifier.messages]
    assert subjects[1].startswith("Rollout complete") and "Watching it for 60 minutes" in env.notifier.messages[1][1]
    assert subjects[-1].startswith("Rollback")


def test_the_rollout_complete_page_says_the_windows_length_as_its_end_does_not_in_fractions_of_a_minute():
    """A window of 86399.4 s (a day, less a fraction of a second) was announced as "Watching it for
    1439.99 minutes", a figure nobody gave, where the window's own end says "23 hours 59 minutes 59
    seconds of monitoring"; a 14-day one as "Watching it for 20160 minutes"."""
    env = fake_environment()
    env.metrics = FakeMetrics(env.router, degrades_after_promotion(delay=900))
    result = canary_on(env, unphased_spec(monitor_seconds=86399.4))
    assert result.outcome == "rolled_back", result.reason
    subject, message = env.notifier.messages[1]
    assert subject.startswith("Rollout complete"), subject
    assert "Watching it for 23 hours 59 minutes 59 seconds while" in message, message


def test_a_clean_window_in_the_canary_flow_keeps_the_old_service_and_says_so():
    env = fake_environment()
    started = env.clock.now()
    result = canary_on(env, unphased_spec())
    assert result.outcome == "promoted"
    assert env.clock.now() - started >= HOUR, "the run watched the whole window"
    assert env.deployer.services[env.targets.stable_service].desired == 4, "nothing is decommissioned"
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Monitoring passed") and "does not decommission" in message


def test_the_canary_flow_without_a_window_ends_at_the_promotion():
    env = fake_environment()
    env.metrics = FakeMetrics(env.router, degrades_after_promotion(delay=600))
    result = canary_on(env, unphased_spec(monitor_seconds=0))
    assert result.outcome == "promoted"
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Rollout complete") and "Watching" not in message


def metrics_dark_after_promotion():
    """An environment whose metrics reads fail (AccessDenied) once the 100% stage has baked."""
    env = fake_environment()
    healthy = steady(5000.0, 0.001, 0.0)
    seen: dict = {}

    def dark_after_promotion(weights: Weights, t: float):
        if weights.canary == 100 and t >= seen.setdefault("full", t) + 300:  # the 100% stage has baked
            env.metrics.error = "GetMetricData: AccessDenied"
        return healthy(weights, t)

    env.metrics = FakeMetrics(env.router, dark_after_promotion)
    return env


def test_the_canary_flow_does_not_finalize_a_promotion_whose_window_it_could_not_see():
    """Metrics that go dark after the promotion leave a window nobody saw: finalizing would
    drop the cheap rollback, so the run stops before it and says what to do: `rollway abort`
    finds no rollout the ledger does not record, so rolling back is the `rollback` flow's."""
    from rollway.finalize import FinalizeRefused

    env = metrics_dark_after_promotion()
    with pytest.raises(FinalizeRefused, match="window was not verified .*rollway finalize --unrecorded") as refused:
        canary_on(env, unphased_spec(), finalize=True)
    assert "roll it back with the `rollback` flow" in str(refused.value)
    assert "rollway abort` to roll it back" not in str(refused.value)
    assert env.router.weights == Weights(stable=0, canary=100), "the promotion stands, not finalized"
    assert env.deployer.services[env.targets.stable_service].task_definition == STABLE_TD


def test_an_unverified_window_of_the_canary_flow_says_what_a_person_can_run():
    """The page said "run the monitor again", which the monitor flow refuses for a promotion the
    ledger does not record (the `canary` flow keeps none): it names finalize and the rollback flow."""
    env = metrics_dark_after_promotion()
    result = canary_on(env, unphased_spec())
    assert result.outcome == "promoted"
    subject, message = env.notifier.messages[-1]
    assert subject.startswith("Monitoring unverified") and "AccessDenied" in message, (subject, message)
    assert "run the monitor again" not in message
    assert "rollway finalize --unrecorded" in message and "roll it back with the `rollback` flow" in message


def test_an_unverified_window_of_the_canary_flow_is_not_a_plain_promotion_in_its_summary():
    """The page and the monitoring artifact said the window was unverified, while the run's result
    and its summary artifact said only "promoted", with the last stage's reason."""
    from flows.journal import artifact_key
    from tests.flows.test_artifacts import run_artifacts

    env = metrics_dark_after_promotion()
    state = canary_on(env, unphased_spec(), return_state=True)
    result = state.result()
    assert result.outcome == "promoted"
    assert "monitoring window unverified" in result.reason and "AccessDenied" in result.reason
    summary = run_artifacts(state)[artifact_key(env.targets.canary_service, "summary")]
    assert f"# Canary of `{IMAGE}` promoted (monitoring unverified)" in summary.splitlines()
    assert "AccessDenied" in summary


def test_the_canary_flows_window_writes_nothing_into_an_earlier_rollouts_record():
    env = fake_environment()
    env.ledger = FakeLedger()
    old = RolloutRecord(service=env.targets.canary_service, rollout_id="20261101T000000Z-00000000",
                        image="webordinary/edit-container:1.9.0", spec_json=unphased_spec().model_dump_json(),
                        phase=RolloutPhase.ROLLED_BACK)
    env.ledger.create(old, owner="old-run", now=0.0, lease_seconds=1.0)
    env.ledger.release(old.service, owner="old-run")
    before = env.ledger.get(old.service)
    assert canary_on(env, unphased_spec()).outcome == "promoted"
    assert env.ledger.get(old.service) == before


def test_a_progressive_rollout_that_keeps_the_old_service_is_watched_and_the_window_closed():
    env = env_with_ledger()
    spec = unphased_spec()
    assert progressive_on(env, spec, auto_approve()).outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert kinds(env)[-2:] == ["promote", "watched"]
    assert env.deployer.services[env.targets.stable_service].desired == 4
    # Once the window is closed the record belongs to history: an abort must not roll back a
    # version that passed its window.
    assert not monitoring_owed(spec, record) and not open_for_rollback(spec, record)
    assert env.notifier.messages[-1][0].startswith("Monitoring passed")


def test_a_progressive_rollout_that_keeps_the_old_service_rolls_back_inside_its_window():
    env = env_with_ledger()
    env.metrics = FakeMetrics(env.router, degrades_after_promotion(delay=900))
    result = progressive_on(env, unphased_spec(), auto_approve())
    assert result.outcome == "rolled_back" and "monitoring after promotion" in result.reason
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK
    assert env.router.weights == Weights(stable=100, canary=0)
    assert "watched" not in kinds(env)


def test_a_window_whose_run_died_is_watched_to_its_end_by_the_next_run():
    env, spec = _killed_while_monitoring(unphased_spec())
    record = env.ledger.get(env.targets.canary_service)
    assert "watched" not in kinds(env)
    assert monitoring_owed(spec, record) and open_for_rollback(spec, record), "the window is still open"

    env.clock.sleep(601)  # the dead run's lease runs out
    before = env.metrics.calls
    assert progressive_on(env, spec, auto_approve(), owner="run-2").outcome == "promoted"
    assert kinds(env)[-1] == "watched"
    # The looks left, plus one read of the dead-letter queues' depth when the window opened.
    assert env.metrics.calls - before <= 12, "only what was left of the window is watched again"


def test_records_promoted_before_windows_without_decommission_are_not_reopened():
    """A rollout promoted by an earlier rollway, whose plan kept the old service, owed no window:
    it must not become abortable (or watched) again after an upgrade."""
    spec = unphased_spec()
    promoted_long_ago = RolloutRecord(
        service="svc", rollout_id="20260101T000000Z-00000000", image=IMAGE, spec_json=spec.model_dump_json(),
        phase=RolloutPhase.PROMOTED, weights=Weights(stable=0, canary=100),
        history=(Transition(at=0.0, kind="promote", actor="alice"),),
    )
    assert not monitoring_owed(spec, promoted_long_ago) and not open_for_rollback(spec, promoted_long_ago)
    recorded_window = promoted_long_ago.model_copy(update={"monitor_until": HOUR})
    assert monitoring_owed(spec, recorded_window) and open_for_rollback(spec, recorded_window)
