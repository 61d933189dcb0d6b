"""The `monitor` flow started by hand on a promoted rollout that owes no window.

The README has it watch a rollout whose policy turned monitoring off for an hour. Its rollback
was refused as every rollback of a closed rollout is: a release failing 8 % of requests moved no
traffic, paged nobody, and the run said "rolled_back" with the refusal's "neither moves the
traffic nor pages anyone" as its reason, in its result and its monitoring artifact.
"""

from __future__ import annotations

import logging

import pytest

from flows.monitor import MonitorRefused, monitor
from rollway.fakes import steady
from rollway.finalize import DONE, START
from rollway.ledger import Transition, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import WeeklyPhase
from tests.flows.test_monitor import monitoring_artifact
from tests.flows.test_monitor_rollout import RELEASE_TD, SPEC, promoted_world

DECOMMISSIONING = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})


def closed_by(env, rollout: str, kind: str) -> None:
    env.ledger.record(env.targets.canary_service, owner=None, now=env.clock.now(), rollout=rollout,
                      transition=Transition(at=env.clock.now(), kind=kind, actor="monitor"))


def rolled_back_by_the_monitor(env, result) -> None:
    assert result.outcome == "rolled_back" and "over the 5% guardrail" in result.reason, result
    assert result.rollback is not None and env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.last_transition("rollback").actor == "monitor"
    assert [s for s, _ in env.notifier.messages if s.startswith("Rollback")], env.notifier.messages


def test_a_window_started_by_hand_on_a_rollout_whose_policy_watches_none_rolls_a_regression_back(monkeypatch):
    env, _ = promoted_world(monkeypatch, spec=DECOMMISSIONING.model_copy(update={"monitor_seconds": 0.0}))
    rolled_back_by_the_monitor(env, monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600))


@pytest.mark.parametrize("kind", ["decommission", "watched"])
def test_a_window_started_by_hand_after_the_rollouts_window_closed_rolls_a_regression_back(monkeypatch, kind):
    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING if kind == "decommission" else SPEC)
    closed_by(env, first.rollout_id, kind)
    if kind == "decommission":
        env.deployer.update_service(env.targets.stable_service, desired=0)
    rolled_back_by_the_monitor(env, monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600))


@pytest.mark.parametrize("decommission", [None, True])
def test_a_window_started_by_hand_after_a_decommission_only_watches(monkeypatch, decommission):
    """Run again on a decommissioned rollout, a clean window decommissioned it a second time: a
    second `decommission` entry in its history and a second "Old version decommissioned" page.
    It says when and by whom the old service was decommissioned, and records and pages nothing."""
    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING)
    closed_by(env, first.rollout_id, "decommission")
    env.deployer.update_service(env.targets.stable_service, desired=0)
    done = env.ledger.get(env.targets.canary_service).last_transition("decommission")
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy
    env.clock.sleep(120)
    result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600, decommission=decommission)
    assert result.outcome == "passed" and result.rollback is None, result
    assert f"decommissioned already, by monitor at {utc(done.at)}" in result.reason, result.reason
    assert "nothing was scaled, recorded or paged" in result.reason, result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert [t.kind for t in record.history].count("decommission") == 1, record.history
    assert "watched" not in [t.kind for t in record.history], record.history
    assert record.phase is RolloutPhase.PROMOTED and env.notifier.messages == []
    assert env.deployer.describe(env.targets.stable_service).desired == 0


def test_a_finalized_rollout_is_refused_before_any_write(monkeypatch):
    """Finalized, the stable service runs the promoted version: there is no previous version left
    for a window to roll back to."""
    env, first = promoted_world(monkeypatch)
    closed_by(env, first.rollout_id, "watched")  # finalize waits for the window's end
    closed_by(env, first.rollout_id, START)
    closed_by(env, first.rollout_id, DONE)
    env.deployer.update_service(env.targets.stable_service, task_definition=RELEASE_TD)
    env.router.weights = Weights(stable=100, canary=0)
    calls = len(env.ledger.calls)
    with pytest.raises(MonitorRefused) as refused:
        monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    message = str(refused.value)
    assert f"{first.rollout_id} of {SPEC.image} was finalized" in message and "Nothing was changed" in message, message
    assert [c for c in env.ledger.calls[calls:] if not c.startswith("get ")] == []
    assert env.notifier.messages == [] and env.router.weights == Weights(stable=100, canary=0)


def test_a_rollout_whose_services_were_changed_since_its_closed_window_is_refused_naming_them(monkeypatch):
    """A finalize done outside rollway (the stable service on the promoted revision): a window's
    rollback would move the traffic onto the same version and call the rollout rolled back."""
    env, first = promoted_world(monkeypatch)
    closed_by(env, first.rollout_id, "watched")
    env.deployer.update_service(env.targets.stable_service, task_definition=RELEASE_TD)
    with pytest.raises(MonitorRefused) as refused:
        monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    message = str(refused.value)
    assert f"{env.targets.stable_service} runs {RELEASE_TD}" in message and "Nothing was changed" in message, message
    assert env.notifier.messages == [] and env.router.weights == Weights(stable=0, canary=100)


def ends_keeping_the_old_service(env, ending: str) -> None:
    """A healthy release whose window ends with the old service kept: too few looks count requests
    to it ("unverified"), or a fifth of the traffic was put back on the old service ("kept for traffic")."""
    from rollway.fakes import FakeMetrics, VersionSample

    busy = steady(5000, 0.001, 0.001)
    if ending == "unverified":
        cutoff = env.clock.now() + 60
        env.metrics = FakeMetrics(env.router,
                                  lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    else:
        env.metrics = FakeMetrics(env.router, busy)
        env.router.weights = Weights(stable=20, canary=80)


@pytest.mark.parametrize("ending", ["unverified", "kept for traffic"])
def test_a_window_started_by_hand_on_a_closed_rollout_records_no_open_end_and_says_it_is_closed(monkeypatch, caplog,
                                                                                                 ending):
    """A window started by hand after the rollout's own closed ("watched") is a person's extra look:
    its end left open (too few looks counting requests, or traffic put back on the old service)
    was recorded beside the history as the rollout's owed window's, which no reader takes (none is
    owed), and the run never said the rollout's window was closed. It records nothing of it, and
    says at the start that the rollout's window closed and what this one does."""
    import logging

    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING)
    closed_by(env, first.rollout_id, "watched")  # a plan that decommissioned none, since changed: closed all the same
    closed = env.ledger.get(env.targets.canary_service)
    ends_keeping_the_old_service(env, ending)
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600, decommission=True)
    assert result.outcome == "passed" and env.deployer.describe(env.targets.stable_service).desired == 4, result
    record = env.ledger.get(env.targets.canary_service)
    assert (record.unverified_window, record.kept_for_traffic) == (None, None), record
    assert record.history == closed.history, record.history
    said = [r.getMessage() for r in caplog.records if "owes no monitoring window" in r.getMessage()]
    assert said and f"rollout {first.rollout_id} owes no monitoring window: its own window closed (watched by monitor at" \
        in said[0], said


@pytest.mark.parametrize("owed", ["watched", "watches none"])
def test_a_clean_window_started_by_hand_on_a_rollout_that_keeps_its_old_service_records_no_second_close(monkeypatch,
                                                                                                       owed):
    """A rollout whose plan keeps the old service, its window closed ("watched"), or never owed
    (its policy watches none): a window started by hand that passed cleanly recorded a "watched"
    entry of its own, and the rollout report quoted that later run's comment as the window's
    close. It closed nothing: its outcome stays in its result (and artifact, and log), which say
    that it was an extra look and when and by whom the rollout's window had closed."""
    spec = SPEC if owed == "watched" else SPEC.model_copy(update={"monitor_seconds": 0.0})
    env, first = promoted_world(monkeypatch, spec=spec)
    if owed == "watched":
        env.ledger.record(env.targets.canary_service, owner=None, now=env.clock.now(), rollout=first.rollout_id,
                          transition=Transition(at=env.clock.now(), kind="watched", actor="canary",
                                                comment="10 minutes of monitoring passed"))
    before = env.ledger.get(env.targets.canary_service)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy
    env.clock.sleep(120)
    result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    assert result.outcome == "passed" and result.verified and result.rollback is None, result
    assert "an extra look" in result.reason and "nothing was scaled, recorded or paged" in result.reason, result.reason
    if owed == "watched":
        closed = before.last_transition("watched")
        assert f"its own window closed (watched by canary at {utc(closed.at)})" in result.reason, result.reason
    else:
        assert "its policy watches none" in result.reason, result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert record.history == before.history, record.history
    assert record.phase is RolloutPhase.PROMOTED and env.notifier.messages == []
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    assert "an extra look" in monitoring_artifact(env)


@pytest.mark.parametrize("owed", ["watched", "watches none"])
@pytest.mark.parametrize("ending", ["unverified", "kept for traffic"])
def test_an_extra_look_on_a_decommissioning_plan_that_keeps_the_old_service_pages_nobody(monkeypatch, caplog, owed,
                                                                                         ending):
    """A window started by hand on a decommissioning rollout that owes none (its window closed, or its
    policy watches none), ending with the old service kept, paged "Decommission skipped: ... run the
    monitor again" as if the rollout's own window had been left open and a look were owed. Nothing
    changed and nothing is owed: like an extra look's clean end on a plan that keeps the old service,
    it pages nobody, and its result and artifact say it was an extra look and why none was owed."""
    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING if owed == "watched" else
                                DECOMMISSIONING.model_copy(update={"monitor_seconds": 0.0}))
    if owed == "watched":
        closed_by(env, first.rollout_id, "watched")
    before = env.ledger.get(env.targets.canary_service)
    ends_keeping_the_old_service(env, ending)
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    assert env.notifier.messages == [], env.notifier.messages
    # Unpaged, its end is a warning in the run's log: the old service runs on, decommissioned by no one.
    end = [r for r in caplog.records if r.getMessage() == result.reason]
    assert [r.levelno for r in end] == [logging.WARNING], [(r.levelname, r.getMessage()) for r in end]
    assert result.outcome == "passed" and result.verified is (ending != "unverified"), result
    assert "an extra look" in result.reason and "nothing was scaled, recorded or paged" in result.reason, result.reason
    assert "run the monitor again" not in result.reason, result.reason
    if owed == "watched":
        closed = before.last_transition("watched")
        assert f"its own window closed (watched by monitor at {utc(closed.at)})" in result.reason, result.reason
    else:
        assert "its policy watches none" in result.reason, result.reason
    if ending == "kept for traffic":
        assert f"{env.targets.stable_service} still carries 20% of traffic" in result.reason, result.reason
    assert env.ledger.get(env.targets.canary_service).history == before.history
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    assert "an extra look" in monitoring_artifact(env)


def the_ledger_cannot_be_reached_to_claim_it(monkeypatch, env) -> None:
    from botocore.exceptions import ClientError

    import flows.monitor

    def throttled(lease):
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Rate of requests exceeds the allowed throughput"}}, "UpdateItem")

    monkeypatch.setattr(flows.monitor._Lease, "renew_passed", throttled)


def a_rollback_races_the_scale_down(monkeypatch, env) -> None:
    import flows.monitor

    monkeypatch.setattr(flows.monitor, "_rollback_since", lambda env, seconds: "12% of traffic went back to it")


def the_race_cannot_be_read(monkeypatch, env) -> None:
    import flows.monitor

    def unanswered(env, seconds):
        raise RuntimeError("the load balancer did not answer within 30 s")

    monkeypatch.setattr(flows.monitor, "_rollback_since", unanswered)


@pytest.mark.parametrize("owed", ["watched", "watches none"])
@pytest.mark.parametrize("interrupted, said", [
    (the_ledger_cannot_be_reached_to_claim_it, "the ledger could not be reached to claim the rollout"),
    (a_rollback_races_the_scale_down, "12% of traffic went back to it while it was being scaled down"),
    (the_race_cannot_be_read, "the load balancer did not answer within 30 s"),
])
def test_an_extra_look_whose_decommission_is_interrupted_pages_nobody(monkeypatch, owed, interrupted, said):
    """A clean extra look on a decommissioning plan whose decommission did not happen (the ledger
    could not be reached to claim the rollout, a rollback raced the scale-down, or whether one did
    could not be read) paged "Decommission skipped: ... run the monitor again", as if the rollout's
    own window had been left open and a look were owed. Nothing is owed and the old service runs as
    before: the run pages nobody (a racing rollback pages for itself), and its result says what kept
    the old service and that this was an extra look."""
    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING if owed == "watched" else
                                DECOMMISSIONING.model_copy(update={"monitor_seconds": 0.0}))
    if owed == "watched":
        closed_by(env, first.rollout_id, "watched")
    before = env.ledger.get(env.targets.canary_service)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy
    env.clock.sleep(120)
    interrupted(monkeypatch, env)
    result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    assert env.notifier.messages == [], env.notifier.messages
    assert result.outcome == "passed" and result.verified and result.rollback is None, result
    assert said in result.reason and "not decommissioned" in result.reason, result.reason
    assert "an extra look" in result.reason and "recorded or paged" in result.reason, result.reason
    assert env.ledger.get(env.targets.canary_service).history == before.history
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    assert "an extra look" in monitoring_artifact(env)


@pytest.mark.parametrize("owed", ["watched", "watches none"])
@pytest.mark.parametrize("interrupted, waits_for", [
    (the_ledger_cannot_be_reached_to_claim_it, "once the ledger answers"),
    (the_race_cannot_be_read, "once the load balancer answers"),
])
def test_an_extra_look_whose_decommission_is_interrupted_warns_and_says_what_finishes_it(monkeypatch, caplog, owed,
                                                                                          interrupted, waits_for):
    """An extra look on a decommissioning plan whose decommission was interrupted logged what kept
    the old service at INFO, among the looks' own lines: its tasks go on running (and costing) at 0 %
    of traffic, and nothing will come back for them, the rollout owing no window. A person scanning
    the run for warnings missed it. It is a warning, and names what finishes the decommission."""
    import logging

    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING if owed == "watched" else
                                DECOMMISSIONING.model_copy(update={"monitor_seconds": 0.0}))
    if owed == "watched":
        closed_by(env, first.rollout_id, "watched")
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy
    env.clock.sleep(120)
    interrupted(monkeypatch, env)
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    assert result.outcome == "passed" and result.verified and env.notifier.messages == [], result
    stable = env.targets.stable_service
    kept = [r for r in caplog.records if "not decommissioned" in r.getMessage()]
    assert [r.levelno for r in kept] == [logging.WARNING], [(r.levelname, r.getMessage()) for r in kept]
    said = " ".join(kept[0].getMessage().split())
    assert (f"{stable} still runs the previous version at 0% of traffic, and no run will come back to it: start "
            f"the `monitor` flow again {waits_for} (its clean end decommissions it), or run `rollway finalize`"
            ) in said, said
    assert said in " ".join(result.reason.split()), result.reason
    assert env.deployer.describe(stable).desired == 4


def test_an_extra_look_whose_decommission_a_rollback_raced_warns_without_a_next_step(monkeypatch, caplog):
    """A rollback that raced the scale-down put the old service back to work and pages for itself:
    the look's end is still a warning (its decommission did not happen), and sends nobody to
    decommission a service the rollback now serves from."""
    import logging

    env, first = promoted_world(monkeypatch, spec=DECOMMISSIONING)
    closed_by(env, first.rollout_id, "watched")
    env.metrics.behaviour = steady(5000, 0.001, 0.001)
    env.clock.sleep(120)
    a_rollback_races_the_scale_down(monkeypatch, env)
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    kept = [r for r in caplog.records if "not decommissioned" in r.getMessage()]
    assert [r.levelno for r in kept] == [logging.WARNING], [(r.levelname, r.getMessage()) for r in kept]
    assert "finalize" not in result.reason and "`monitor` flow again" not in result.reason, result.reason
