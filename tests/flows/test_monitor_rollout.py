"""The `monitor` flow watches one promoted rollout and writes only into it.

It used to watch whatever the service's newest rollout was and write to it without naming its
own: a monitor of rollout 1 whose rollout was rolled back and followed by rollout 2 judged
rollout 2's canary, took its lease, and rolled it back, recording that in rollout 2's history.
"""

from __future__ import annotations

import pytest

from flows.monitor import MonitorRefused, monitor, watched_rollout
from rollway.fakes import FakeClock, FakeLedger, FakeMetrics, steady
from rollway.ledger import RolloutRecord, RolloutSuperseded, Transition, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment, rollout_flows_see

FIRST, SECOND = "webordinary/edit-container:2.0.0", "webordinary/edit-container:3.0.0"
RELEASE_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:2"
NEXT_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:3"
SPEC = RolloutSpec(image=FIRST, stages=[Stage(weight=5), Stage(weight=100)], monitor_seconds=600)


def add_rollout(env, image: str, phase: RolloutPhase, weights: Weights, td: str, *kinds: str,
                spec: RolloutSpec = SPEC) -> RolloutRecord:
    """A rollout of ``image`` in the ledger, owned by nobody (its run released it, or is paused)."""
    now = env.clock.now()
    newest = env.ledger.get(env.targets.canary_service)
    spec = spec.model_copy(update={"image": image})
    record = RolloutRecord(
        service=env.targets.canary_service, rollout_id=new_rollout_id(now, newest.rollout_id if newest else None),
        image=image, spec_json=spec.model_dump_json(), phase=phase, weights=weights, canary_task_definition=td,
        previous_task_definition=STABLE_TD, stable_desired=4, monitor_until=now + SPEC.monitor_seconds,
        history=tuple(Transition(at=now, kind=kind, actor="test") for kind in ("start", *kinds)),
    )
    env.ledger.create(record, owner="run-0", now=now, lease_seconds=0)
    env.ledger.release(env.targets.canary_service, owner="run-0")
    return env.ledger.get(env.targets.canary_service)


def the_next_rollout_starts(env) -> RolloutRecord:
    """Rollout 1 is rolled back (`rollway abort`) and rollout 2 of the next image shifts 5 % to its canary."""
    service = env.targets.canary_service
    env.ledger.record(service, owner=None, now=env.clock.now(), phase=RolloutPhase.ROLLED_BACK,
                      transition=Transition(at=env.clock.now(), kind="rollback", actor="alice"))
    env.router.weights = Weights.canary_at(5)
    env.deployer.update_service(service, task_definition=NEXT_TD, desired=1)
    return add_rollout(env, SECOND, RolloutPhase.PROGRESSING, Weights.canary_at(5), NEXT_TD, "deploy", "shift")


def promoted_world(monkeypatch, clock=None, spec: RolloutSpec = SPEC):
    """2.0.0 promoted (rollout 1, its window open); the next image's canary fails 8 % of requests."""
    env = fake_environment()
    if clock is not None:
        env.clock = clock
    env.ledger = FakeLedger()
    env.router.weights = Weights(stable=0, canary=100)
    env.deployer.update_service(env.targets.canary_service, task_definition=RELEASE_TD, desired=4)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.08))
    rollout_flows_see(monkeypatch, env)
    first = add_rollout(env, FIRST, RolloutPhase.PROMOTED, Weights(stable=0, canary=100), RELEASE_TD, "promote",
                        spec=spec)
    return env, first


def run_monitor_flow(**params):
    return monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600, **params)


def test_a_monitor_asked_for_a_rollout_that_is_not_the_newest_promoted_one_refuses_before_any_write(monkeypatch):
    env, _ = promoted_world(monkeypatch)
    second = the_next_rollout_starts(env)
    calls = len(env.ledger.calls)
    with pytest.raises(MonitorRefused) as refused:
        run_monitor_flow()
    message = str(refused.value)
    assert f"{second.rollout_id} of {SECOND}, progressing" in message and "\n" not in message
    assert env.ledger.get(env.targets.canary_service) == second, "rollout 2 is untouched"
    assert [c for c in env.ledger.calls[calls:] if not c.startswith("get ")] == []
    assert env.router.weights == Weights.canary_at(5) and env.notifier.messages == []


class Meanwhile(FakeClock):
    """A clock on which ``then(env)`` happens during the monitor's ``at``-th sleep."""

    def __init__(self, at: int, then) -> None:
        super().__init__()
        self.at, self.then, self.sleeps, self.env = at, then, 0, None

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.sleeps += 1
        if self.sleeps == self.at:
            self.then(self.env)


def test_a_monitor_whose_rollout_was_superseded_mid_window_stops_without_touching_the_new_one(monkeypatch):
    def next_rollout_fails(env):
        the_next_rollout_starts(env)
        env.metrics.behaviour = steady(5000, 0.001, 0.08)  # the canary is 3.0.0's now, failing 8 %

    clock = Meanwhile(at=2, then=next_rollout_fails)
    env, first = promoted_world(monkeypatch, clock)
    clock.env = env
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy
    with pytest.raises(RolloutSuperseded, match=f"rollout '{first.rollout_id}' .* is no longer the newest"):
        run_monitor_flow()
    second = env.ledger.get(env.targets.canary_service)
    assert (second.image, second.phase, second.owner) == (SECOND, RolloutPhase.PROGRESSING, None)
    assert [t.kind for t in second.history] == ["start", "deploy", "shift"]
    assert env.router.weights == Weights.canary_at(5), "rollout 2's traffic was not moved"
    assert not any(subject.startswith("Rollback") for subject, _ in env.notifier.messages)


@pytest.mark.parametrize(("image", "phase", "refusal"), [
    (None, None, "no rollout of svc is recorded"),
    (FIRST, RolloutPhase.ROLLED_BACK, f"r1 of {FIRST}, rolled_back: not a promoted rollout"),
    (SECOND, RolloutPhase.PROMOTED, f"r1 of {SECOND}, promoted: not a promoted rollout of {FIRST}"),
], ids=["none-recorded", "rolled-back", "another-image"])
def test_what_the_monitor_flow_refuses_to_watch(image, phase, refusal):
    record = None if image is None else RolloutRecord(service="svc", rollout_id="r1", image=image, spec_json="{}",
                                                      phase=phase)
    with pytest.raises(MonitorRefused, match=refusal):
        watched_rollout(record, SPEC, "svc")
    promoted = RolloutRecord(service="svc", rollout_id="r2", image=FIRST, spec_json="{}", phase=RolloutPhase.PROMOTED)
    assert watched_rollout(promoted, SPEC, "svc") is promoted


def resume_the_window(monkeypatch, env):
    """`progressive_rollout` run again on the promoted rollout: it watches what is left of its window."""
    import flows.progressive

    rollout_flows_see(monkeypatch, env)
    return flows.progressive.progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)


@pytest.mark.parametrize("watcher", ["monitor", "progressive_rollout"])
def test_the_monitor_does_not_reopen_a_rollback_an_abort_just_finished(monkeypatch, watcher):
    """`rollway abort` of the failing promoted release finished while the monitor's check read the
    metrics: the monitor's own rollback start reopened the rolled-back rollout, moved the traffic
    again and paged a second time. In a `progressive_rollout` run the window then failed the run
    with an AttributeError (no rollback of its own to take the weights from). Its result then said
    only the abort's rollback, not the breach this window had found."""
    env, first = promoted_world(monkeypatch)
    service = env.targets.canary_service
    observe, done = env.metrics.observe, []

    def abort_lands_meanwhile(start, end):
        seen = observe(start, end)  # 2.0.0 failing 8 %: CloudWatch lags the abort
        if not done and any(i.canary is not None for i in seen.intervals):
            done.append(True)
            now = env.clock.now()
            begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=now,
                           rollout=first.rollout_id)
            env.router.set_weights(Weights(stable=100, canary=0))
            env.ledger.record(service, owner=None, now=now, rollout=first.rollout_id, phase=RolloutPhase.ROLLED_BACK,
                              weights=Weights(stable=100, canary=0),
                              transition=Transition(at=now, kind="rollback", actor="erin"))
        return seen

    env.metrics.observe = abort_lands_meanwhile
    result = run_monitor_flow() if watcher == "monitor" else resume_the_window(monkeypatch, env)
    assert result.outcome == "rolled_back" and "already rolled back by erin" in result.reason, result
    # And why this window wanted to roll the release back, which the abort's message alone lost.
    assert result.reason.startswith("monitoring after promotion: ") and "8.00%" in result.reason, result.reason
    if watcher == "progressive_rollout":
        assert result.final_weights == Weights(stable=100, canary=0) and result.rollback is None, result
    kinds = [(t.kind, t.actor) for t in env.ledger.get(service).history]
    assert kinds[-2:] == [("rollback-start", "erin"), ("rollback", "erin")], kinds
    assert [s for s, _ in env.notifier.messages if s.startswith("Rollback")] == []


def test_a_window_that_waited_for_an_aborts_rollback_says_in_its_artifact_that_the_abort_rolled_back(monkeypatch):
    """`rollway abort` of the failing promoted release was under way (holding the rollback's claim)
    when the monitor's look found the breach: the monitor waited for it and did nothing again. Its
    artifact said the breach and the traffic after "the rollback", read as this run's rollback and
    page, and never that erin's abort had rolled the release back."""
    from tests.flows.test_monitor import monitoring_artifact

    clock = Meanwhile(at=0, then=None)
    env, first = promoted_world(monkeypatch, clock)
    clock.env = env
    service = env.targets.canary_service
    observe = env.metrics.observe

    def abort_ends(env):
        now = env.clock.now()
        env.router.set_weights(Weights(stable=100, canary=0))
        env.ledger.record(service, owner=None, now=now, rollout=first.rollout_id, phase=RolloutPhase.ROLLED_BACK,
                          weights=Weights(stable=100, canary=0),
                          transition=Transition(at=now, kind="rollback", actor="erin", comment="aborted by erin",
                                                to_weights=Weights(stable=100, canary=0)))

    def abort_under_way(start, end):
        seen = observe(start, end)  # 2.0.0 failing 8 %: CloudWatch lags the abort
        if clock.then is None and any(i.canary is not None for i in seen.intervals):
            begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                           rollout=first.rollout_id, holder="erin (cli)", wall=env.wall())
            clock.at, clock.then = clock.sleeps + 1, abort_ends  # it ends while the monitor waits for it
        return seen

    env.metrics.observe = abort_under_way
    result = run_monitor_flow()
    assert result.outcome == "rolled_back" and result.rollback.done_by == "erin (cli)", result
    assert [s for s, _ in env.notifier.messages if s.startswith("Rollback")] == []
    summary = monitoring_artifact(env)
    assert "8.00%" in summary and "rolled back by erin (erin (cli)) while this rollback waited" in summary, summary


def test_a_rollback_by_hand_still_acts_when_the_window_closes_between_its_read_and_its_start(monkeypatch):
    """Read a moment later (window closed) the `rollback` flow by hand rolls the promoted release
    back, as documented; read a moment earlier (window owed) it failed with RolloutClosed."""
    import flows.rollback
    from flows.rollback import rollback

    env, first = promoted_world(monkeypatch)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    service = env.targets.canary_service
    real_record = env.ledger.record

    def decommission_lands_first(*args, **kwargs):
        transition = kwargs.get("transition")
        if transition is not None and transition.kind == "rollback-start":
            now = env.clock.now()
            real_record(service, owner=None, now=now, rollout=first.rollout_id,
                        transition=Transition(at=now, kind="decommission", actor="monitor"))
        return real_record(*args, **kwargs)

    env.ledger.record = decommission_lands_first
    rollback(reason="2.0.0 corrupts sessions", actor="erin")
    assert env.router.weights == Weights(stable=100, canary=0), env.router.weights


def test_the_monitors_rollback_records_the_weights_it_read_back(monkeypatch):
    """The rollback's end carried no weights, so reports took the finished rollback for one
    never confirmed (rollway.reports: 'Not confirmed ... run rollway abort')."""
    env, first = promoted_world(monkeypatch)
    result = run_monitor_flow()
    assert result.outcome == "rolled_back", result
    end = env.ledger.get(env.targets.canary_service).last_transition("rollback")
    assert end.actor == "monitor" and end.to_weights == Weights(stable=100, canary=0)


def test_a_monitor_started_with_only_the_image_rolls_back_by_the_rollouts_recorded_spec(monkeypatch, caplog):
    """The `monitor` flow judged and rolled back by the spec it was given. A person filling the
    form with the promoted image alone got default guardrails, and its rollback left the flags
    the rollout had bound to its traffic on, for everyone."""
    import logging

    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    bound = SPEC.model_copy(update={"flags": (FlagBinding(feature="multi-session"),)})
    env, _ = promoted_world(monkeypatch, spec=bound)
    env.flags = FakeFlagStore([FlagState(feature="multi-session", enabled=True, percentage=100.0)])

    with caplog.at_level(logging.WARNING):
        result = monitor(spec={"image": FIRST, "stages": [{"weight": 5}, {"weight": 100}]}, window_seconds=600)
    assert result.outcome == "rolled_back", result
    assert env.flags.get("multi-session").enabled is False, "the rollout's bound flag is off after its rollback"
    assert any("the recorded ones govern this window" in r.getMessage() and "flags" in r.getMessage()
               for r in caplog.records)


def test_a_monitor_started_by_hand_keeps_the_old_service_when_the_rollouts_plan_does(monkeypatch):
    """The `monitor` flow decommissioned after a clean window whatever the rollout's plan said: a
    person starting it from the UI on a rollout whose plan keeps the old service (stages without a
    phase plan) had that service scaled to zero, its rollback target gone. Left unset, the rollout's
    own plan decides, as in the rollout flows' windows."""
    env, first = promoted_world(monkeypatch)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    stable = env.targets.stable_service
    before = env.deployer.describe(stable).desired

    result = run_monitor_flow()
    assert result.outcome == "passed", result
    assert env.deployer.describe(stable).desired == before > 0, "the old service keeps its tasks"
    assert env.ledger.get(env.targets.canary_service).last_transition("watched") is not None


def test_a_monitor_started_by_hand_decommissions_when_the_rollouts_plan_does(monkeypatch):
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=plan)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    assert run_monitor_flow().outcome == "decommissioned"
    assert env.deployer.describe(env.targets.stable_service).desired == 0


def test_a_monitor_started_by_hand_watches_as_long_as_the_rollouts_policy_says(monkeypatch):
    """The form's window_seconds defaulted to an hour whatever the rollout's monitor_seconds: a
    policy of two hours was watched for one, and the old service decommissioned an hour early."""
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"monitor_seconds": 7200.0,
                                   "phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=plan)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert (result.outcome, result.reason) == ("decommissioned", "120 minutes of monitoring passed"), result


def test_a_monitors_rollback_whose_rollout_another_ended_meanwhile_records_no_second_end(monkeypatch, caplog):
    """Its claim was taken over while it sent its notice, and the rollback that took it (`rollway
    abort`) ended the rollout first: the monitor's end was appended too, on a rolled-back rollout,
    and the reports named the monitor as the rollback that finished."""
    import logging

    from tests.flows.test_rollback_notice import ended_meanwhile

    env, first = promoted_world(monkeypatch)
    service = env.targets.canary_service
    ended_meanwhile(env, first.rollout_id, "erin", subject_starts="Rollback")
    with caplog.at_level(logging.WARNING):
        result = run_monitor_flow()
    assert result.outcome == "rolled_back", result
    ends = [t.actor for t in env.ledger.get(service).history if t.kind == "rollback"]
    assert ends == ["erin"], ends
    assert any("end is not recorded" in r.getMessage() and "rolled back by erin" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_a_decommission_skipped_for_traffic_on_the_old_service_says_how_to_go_on(monkeypatch):
    """Traffic moved back by hand during the window: the page said only "not decommissioned". The
    window stays open (`rollway finalize` waits for its end, and the weekly tick watches again and
    skips again), so it says what ends it: the traffic back on the new version and the monitor run
    again, or a rollback."""
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    env.router.weights = Weights(stable=20, canary=80)  # moved back by hand during the window
    result = run_monitor_flow()
    assert result.outcome == "passed" and env.deployer.describe(env.targets.stable_service).desired == 4
    subject, page = env.notifier.messages[-1]
    assert subject.startswith("Decommission skipped") and "still carries 20% of traffic" in page, page
    assert f"all of it back on {env.targets.canary_service}" in page and "run the monitor again" in page, page
    assert "`rollway abort`" in page, page
    assert env.ledger.get(env.targets.canary_service).last_transition("decommission") is None


def test_a_window_the_rollout_run_watches_is_recorded_as_that_runs(monkeypatch):
    """A `progressive_rollout` run watching its own window (here, run again on the promoted rollout)
    recorded the window's end as the `monitor` flow's: "monitor" named a run that never ran, and a
    person looked for it in vain. Its entries name the run's own actor, as its late page did."""
    env, first = promoted_world(monkeypatch)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy: the window passes
    result = resume_the_window(monkeypatch, env)
    assert result.outcome == "promoted", result
    record = env.ledger.get(env.targets.canary_service)
    written = [(t.kind, t.actor) for t in record.history if t.kind in ("watched", "decommission")]
    assert written == [("watched", "operator")], record.history


def test_a_window_the_rollout_run_watches_rolls_back_as_that_run_and_is_reported_as_the_monitors(monkeypatch):
    """Its rollback, too, was recorded as the `monitor` flow's; the incident report still says the
    post-promotion monitor's guardrail triggered it, and who recorded it."""
    from rollway.reports import incident_report, rollback_trigger

    env, first = promoted_world(monkeypatch)
    result = resume_the_window(monkeypatch, env)
    assert result.outcome == "rolled_back", result
    record = env.ledger.get(env.targets.canary_service)
    written = [(t.kind, t.actor) for t in record.history if t.kind in ("rollback-start", "rollback")]
    assert written == [("rollback-start", "operator"), ("rollback", "operator")], record.history
    trigger = rollback_trigger(record)
    assert (trigger.kind, trigger.who) == ("monitor", "operator"), trigger
    assert "post-promotion monitor" in incident_report(record)


def decommission_page_refused(env) -> None:
    """SNS refuses ``env``'s "Old version decommissioned" pages (its topic gone); other notices go out."""
    from rollway.aws.errors import TargetNotFound

    notify = env.notifier.notify

    def topic_gone(subject, message):
        if subject.startswith("Old version decommissioned"):
            raise TargetNotFound("SNS topic", "webordinary-alerts")
        return notify(subject, message)

    env.notifier.notify = topic_gone


def test_a_rollout_runs_window_whose_page_sns_refuses_completes_saying_the_page_is_owed(monkeypatch):
    """SNS refused the decommission's page of a window the rollout run watched: the run failed on it,
    and its rollback hooks went for a release whose window had passed. It completes, promoted, its
    result saying the page is owed and why; the ledger records SNS's answer."""
    from rollway.decommission_page import PAGE_REFUSED
    from rollway.spec import WeeklyPhase

    spec = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=spec)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy: the window decommissions
    decommission_page_refused(env)
    result = resume_the_window(monkeypatch, env)
    assert result.outcome == "promoted", result
    assert "the decommission's page was not sent and is owed: SNS topic 'webordinary-alerts' not found" \
        in result.reason, result.reason
    assert env.deployer.services[env.targets.stable_service].desired == 0
    history = env.ledger.get(env.targets.canary_service).history
    assert [(t.kind, t.actor) for t in history][-2:] == [("decommission", "operator"), (PAGE_REFUSED, "operator")]


def test_an_unverified_window_records_its_look_counts_beside_the_history_and_leaves_the_window_open(monkeypatch):
    """A window in which too few looks counted requests kept the old service and wrote nothing to
    the ledger: status could only say that no run closed it. Its look counts are recorded beside
    the history, which stays as it was (the window is still open: the next run watches again)."""
    from rollway.fakes import VersionSample
    from rollway.ledger import monitoring_owed
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    result = run_monitor_flow()
    assert result.outcome == "passed" and not result.verified, result.reason
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    record = env.ledger.get(env.targets.canary_service)
    assert record.history == first.history, "nothing appended: the window stays open"
    seen = record.unverified_window
    assert seen is not None and seen.looks == result.checks and 0 < seen.counted < result.checks / 2, seen
    assert f"only {seen.counted} of its {seen.looks} looks counted requests to the new version, too few" in result.reason
    assert monitoring_owed(plan.model_copy(update={"image": FIRST}), record)


def test_a_rollback_begun_after_an_unverified_windows_last_look_stops_the_run_and_pages_no_skip(monkeypatch):
    """`rollway abort` lands between the window's last look and its run recording it unverified:
    the run stops (RolloutEnded), as a decommission's claim does, and pages no "Decommission
    skipped" saying the old service is kept for a window the rollback has ended."""
    from rollway.decide import window_settled
    from rollway.fakes import VersionSample
    from rollway.ledger import RolloutEnded
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    service = env.targets.canary_service
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    observe, looks = env.metrics.observe, []

    def abort_lands_after_the_last_look(start, end):
        seen = observe(start, end)
        looks.append(end)
        if end >= window_settled(looks[0], 600, plan.analysis):
            begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                           rollout=first.rollout_id)
        return seen

    env.metrics.observe = abort_lands_after_the_last_look
    with pytest.raises(RolloutEnded):
        run_monitor_flow()
    record = env.ledger.get(service)
    assert record.phase is RolloutPhase.ROLLING_BACK and record.unverified_window is None, record
    assert len(looks) > 2 and record.history[-1].kind == "rollback-start", (looks, record.history)
    skipped = [s for s, _ in env.notifier.messages if s.startswith(("Decommission skipped", "Monitoring unverified"))]
    assert skipped == [], env.notifier.messages
    assert env.deployer.describe(env.targets.stable_service).desired == 4


def _unverified_then(monkeypatch, plan: RolloutSpec, *, stable_share: int = 0):
    """A window of ``plan`` ends unverified (its counts recorded), then the monitor runs again on a
    release serving requests all along, with ``stable_share`` % of the traffic put back by hand."""
    from rollway.fakes import VersionSample

    env, first = promoted_world(monkeypatch, spec=plan)
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    assert not run_monitor_flow().verified
    assert env.ledger.get(env.targets.canary_service).unverified_window is not None
    env.metrics = FakeMetrics(env.router, busy)
    env.router.weights = Weights(stable=stable_share, canary=100 - stable_share)
    return env, run_monitor_flow()


@pytest.mark.parametrize(("decommission", "stable_share", "outcome"), [
    (True, 0, "decommissioned"),  # the window closes with a decommission
    (False, 0, "passed"),  # closed "watched": the plan keeps the old service
    (True, 10, "passed"),  # verified, but not closed: someone put 10 % back on the old service
])
def test_a_window_that_passes_after_an_unverified_one_clears_its_look_counts(monkeypatch, decommission, stable_share,
                                                                              outcome):
    """An unverified end's look counts were replaced by the next unverified end and never cleared:
    after a later run's window passed, status (and the report, while the window was still owed)
    went on saying "unverified: 3 of 12 looks counted requests; the old service is kept" of a
    window whose newest run had measured all of its looks. The run that verifies the window clears
    them in the claim it writes before closing it."""
    from rollway.reports import monitoring_row
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=decommission),)})
    env, result = _unverified_then(monkeypatch, plan, stable_share=stable_share)
    assert (result.outcome, result.verified) == (outcome, True), result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert record.unverified_window is None, record.unverified_window
    row = monitoring_row(record, env.clock.now() + 3600)
    assert row is None or "unverified" not in row, row


def test_a_resumed_windows_pages_say_it_was_resumed_as_its_result_and_ledger_do(monkeypatch):
    """The result and the decommission's ledger entry said "60 minutes of monitoring passed (resumed
    30 minutes after the promotion)"; the "Old version decommissioned" and "Monitoring passed" pages
    said "passed 60 minutes of monitoring at 100%", as if one run had watched the whole hour."""
    from flows.monitor import run_monitor
    from prefect import flow
    from rollway.spec import WeeklyPhase

    for decommission, subject in ((False, "Monitoring passed"), (True, "Old version decommissioned")):
        plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100),
                                                              decommission=decommission),)})
        env, first = promoted_world(monkeypatch, spec=plan)
        env.metrics.behaviour = steady(5000, 0.001, 0.001)
        opened = env.clock.now()
        env.clock.sleep(300)

        @flow
        def resumed():
            return run_monitor(env, plan, window_seconds=300, decommission=decommission, stable_desired=4,
                               owner="run-2", rollout=first.rollout_id, opened_at=opened)

        result = resumed()
        assert "10 minutes of monitoring passed (resumed 5 minutes after the promotion)" in result.reason, result.reason
        [page] = [body for s, body in env.notifier.messages if s.startswith(subject)]
        assert "passed 10 minutes of monitoring at 100% (resumed 5 minutes after the promotion)" in page, page
    # The late page (the run died before paging) quotes the decommission's entry: it says so too.
    from rollway.decommission_page import late_message

    record = env.ledger.get(env.targets.canary_service)
    late = late_message(record, record.last_transition("decommission"), env.targets.stable_service)
    assert "10 minutes of monitoring passed (resumed 5 minutes after the promotion)" in late, late


def test_a_clean_window_kept_for_traffic_moved_back_says_so_in_status_and_the_report(monkeypatch):
    """A window that passed cleanly but kept the old service, because 20 % of traffic had been put
    back on it by hand, recorded nothing: status said "no run closed it (the run watching it
    stopped, or too few of its looks ...)", both false. The reason is recorded beside the history,
    through the run's lease, and status and the report say it; the run that closes the window
    clears it."""
    from rollway.reports import monitoring_row, rollout_report
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics = FakeMetrics(env.router, steady(5000, 0.001, 0.001))
    env.router.weights = Weights(stable=20, canary=80)  # moved back by hand during the window
    result = run_monitor_flow()
    assert (result.outcome, result.verified) == ("passed", True), result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert record.history == first.history, "nothing appended: the window stays open"
    kept = record.kept_for_traffic
    assert kept is not None and (kept.stable, kept.actor) == (20, "monitor"), kept
    said = (f"passed cleanly, but the old service ({env.targets.stable_service}) still carried 20% of traffic (put "
            "back on it by hand) when monitor's run ended the window")
    for now in (env.clock.now() - 60, env.clock.now() + 3600):
        row = monitoring_row(record, now)
        assert said in row and "no run closed it" not in row and "open until" not in row, row
        assert f"put all of it back on {env.targets.canary_service}" in row, row
    (outcome,) = [line for line in rollout_report(record).splitlines() if line.startswith("- **Outcome:**")]
    assert said in outcome and "`rollway abort` can still roll the release back" in outcome, outcome

    env.router.weights = Weights(stable=0, canary=100)  # put back: the next window decommissions
    assert run_monitor_flow().outcome == "decommissioned"
    assert env.ledger.get(env.targets.canary_service).kept_for_traffic is None


@pytest.mark.parametrize("ending", ["unverified", "kept for traffic"])
def test_status_names_the_old_service_a_window_left_open_keeps(monkeypatch, ending):
    """Status's monitoring row, the report and finalize's refusal said "the old service is kept" (or
    "still carried 20% of traffic") without naming it: the record is the canary's, and a person had
    to know which service the rollout's old one is. The run that keeps it records its name."""
    from rollway.reports import monitoring_row
    from rollway.spec import WeeklyPhase
    from tests.flows.test_monitor_closed_window import ends_keeping_the_old_service

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=plan)
    ends_keeping_the_old_service(env, ending)
    run_monitor_flow()
    row = monitoring_row(env.ledger.get(env.targets.canary_service), env.clock.now())
    stable = env.targets.stable_service
    named = (f"the old service ({stable}) is kept" if ending == "unverified" else
             f"the old service ({stable}) still carried 20% of traffic")
    assert named in row, row


def test_status_while_another_run_watches_the_window_again_says_whose_counts_it_shows(monkeypatch, capsys):
    """After a window ended unverified, a second monitor run watches again; its counts are written only
    at its end (a run that dies must not lose the first one's). Meanwhile status said the first run's
    "unverified: 1 of 11 looks ...; the next monitor run or weekly tick looks again", read as this
    run's counts, or as nobody watching. It says which run watches now, and whose counts it shows."""
    from types import SimpleNamespace

    from rollway.cli.ops import print_status
    from rollway.fakes import VersionSample
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=plan)
    busy, cutoff = steady(5000, 0.001, 0.001), env.clock.now() + 60
    env.metrics = FakeMetrics(env.router, lambda w, t: busy(w, t) if t <= cutoff else (None, VersionSample(requests=0)))
    assert not run_monitor_flow().verified
    first = env.ledger.get(env.targets.canary_service).unverified_window
    statuses, owners = [], []

    def status() -> None:
        record = env.ledger.get(env.targets.canary_service)
        owners.append(record.owner)
        print_status(SimpleNamespace(name=env.targets.canary_service, targets=env.targets), record,
                     env.router.weights, None, limit=1, now=env.clock.now(), wall=env.wall())
        statuses.append(" ".join(capsys.readouterr().out.split()))

    status()  # nobody watches: the first run's end, and what looks again
    assert f"monitoring unverified: {first.counted} of {first.looks} looks" in statuses[0], statuses[0]
    assert "the next monitor run or weekly tick looks again" in statuses[0], statuses[0]
    assert "watched again" not in statuses[0], statuses[0]
    env.metrics = FakeMetrics(env.router, busy)
    observe = env.metrics.observe

    def looks_then_status(start, end):
        if len(owners) == 1 and end - cutoff > 900:  # the second run's looks are under way
            status()
        return observe(start, end)

    env.metrics.observe = looks_then_status
    assert run_monitor_flow().outcome == "decommissioned"
    watching = statuses[1]
    assert owners[1] is not None, owners
    assert f"being watched again now by {owners[1]} (lease until" in watching, watching
    assert (f"whose end replaces the previous run's: unverified: {first.counted} of {first.looks} looks counted "
            "requests") in watching, watching
    assert "the next monitor run or weekly tick looks again" not in watching, watching


def test_a_window_whose_last_period_could_not_be_read_says_so_in_the_ledger_and_status(monkeypatch):
    """CloudWatch refused every read of the window's last period: the run kept the old service, as it
    must, and recorded only its look counts. Status then said "unverified: 10 of 11 looks counted
    requests to the new version" of a window nearly all of whose looks had measured the release:
    nothing told the person that its last period was never judged, nor why, which is why the old
    service was kept. The ledger records the failed read, and status says it."""
    from rollway.decide import window_settled
    from rollway.reports import monitoring_row
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy all along
    settled, observe = window_settled(env.clock.now(), 600, plan.analysis), env.metrics.observe

    def throttled_at_the_end(start, end):
        env.metrics.error = "metrics unavailable: ThrottlingException: Rate exceeded" if end >= settled else None
        return observe(start, end)

    env.metrics.observe = throttled_at_the_end
    result = run_monitor_flow()
    assert result.outcome == "passed" and not result.verified, result.reason
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    record = env.ledger.get(env.targets.canary_service)
    assert "ThrottlingException" in (record.unverified_window.last_unread or ""), record.unverified_window
    row = " ".join(monitoring_row(record, env.clock.now(), wall=env.wall() + 3600).split())
    assert ("unverified: its final look could not read the metrics of the window's last period (metrics "
            "unavailable: ThrottlingException: Rate exceeded), so that period was not judged") in row, row


def test_a_window_whose_unjudged_minutes_could_not_be_read_names_them_in_the_ledger_and_status(monkeypatch):
    """Resumed after its end, the window's minutes nobody watched could not be read at its final
    look (throttled): the run kept the old service, as it must, but recorded nothing of why, so
    status said "unverified: 2 of 2 looks counted requests to the new version" of a window whose
    first ten minutes nobody judged. The ledger records which minutes and why, and status says it."""
    from rollway.ledger import utc
    from rollway.reports import monitoring_row
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy all along
    opened, observe = first.last_transition("promote").at, env.metrics.observe

    def whole_window_throttled(start, end):
        # The read of the window's unjudged minutes spans it; a look's own is 6 minutes.
        env.metrics.error = "metrics unavailable: ThrottlingException: Rate exceeded" if end - start > 600 else None
        return observe(start, end)

    env.metrics.observe = whole_window_throttled
    env.clock.sleep(1200)  # the 10-minute window ended unwatched
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert result.outcome == "passed" and not result.verified, result.reason
    assert env.deployer.describe(env.targets.stable_service).desired == 4
    seen = env.ledger.get(env.targets.canary_service).unverified_window
    assert seen.unjudged_from == opened and "ThrottlingException" in (seen.last_unread or ""), seen
    row = " ".join(monitoring_row(env.ledger.get(env.targets.canary_service), env.clock.now(),
                                  wall=env.wall() + 3600).split())
    assert (f"unverified: its final look could not read the metrics of the window's periods from {utc(opened)} to "
            f"{utc(seen.unjudged_to)}, which no look had judged (metrics unavailable: ThrottlingException: Rate "
            "exceeded), so they were not judged") in row, row


def test_a_window_longer_than_cloudwatch_keeps_its_minutes_is_refused_before_anything_is_watched(monkeypatch):
    """A 16-day window at 1-minute periods: a run resuming it near its end read its first day, which
    CloudWatch keeps no more, as minutes that served nobody. Refused once the ledger says which judge
    governs the window, before anything is read from CloudWatch or written, naming the limit."""
    env, _ = promoted_world(monkeypatch)
    calls, reads = len(env.ledger.calls), env.metrics.calls
    with pytest.raises(MonitorRefused) as refused:
        monitor(spec=SPEC.model_dump(mode="json"), window_seconds=16 * 86400)
    assert "longer than CloudWatch keeps 1-minute data for 15 days" in str(refused.value), refused.value
    assert "Nothing was watched or changed" in str(refused.value), refused.value
    assert [c for c in env.ledger.calls[calls:] if not c.startswith("get ")] == [] and env.metrics.calls == reads


def test_a_window_given_by_hand_is_held_to_the_recorded_judges_periods_not_the_given_specs(monkeypatch):
    """The rollout recorded 5-minute periods (kept 63 days); the form was filled with only the image,
    so the given spec had the default 1-minute ones (kept 15 days). A 20-day window_seconds was
    refused for the given spec's periods, which the window is never read at: the recorded judge's
    periods govern it, and it is watched (the failing release rolled back)."""
    five_minutes = {"interval_seconds": 300}
    recorded = SPEC.model_copy(update={"analysis": SPEC.analysis.model_copy(update=five_minutes)})
    env, _ = promoted_world(monkeypatch, spec=recorded)
    result = monitor(spec=SPEC.model_dump(mode="json"), window_seconds=20 * 86400)
    assert result.outcome == "rolled_back", result.reason
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_window_given_by_hand_longer_than_the_recorded_judges_periods_are_kept_is_refused(monkeypatch):
    """The reverse: given 5-minute periods, the rollout recorded 1-minute ones: 20 days is refused
    at the recorded judge's periods, before anything is read from CloudWatch or written."""
    env, _ = promoted_world(monkeypatch)
    given = SPEC.model_copy(update={"analysis": SPEC.analysis.model_copy(update={"interval_seconds": 300})})
    reads, calls = env.metrics.calls, len(env.ledger.calls)
    with pytest.raises(MonitorRefused, match="longer than CloudWatch keeps 1-minute data for 15 days"):
        monitor(spec=given.model_dump(mode="json"), window_seconds=20 * 86400)
    assert env.metrics.calls == reads and not env.notifier.messages
    assert [c for c in env.ledger.calls[calls:] if not c.startswith("get ")] == [], env.ledger.calls


def test_a_spec_whose_window_outlasts_cloudwatchs_minutes_is_refused():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="monitor_seconds: a monitoring window of 1382400 s is longer than "
                                              "CloudWatch keeps 1-minute data for 15 days"):
        RolloutSpec(image=FIRST, monitor_seconds=16 * 86400)
    assert RolloutSpec(image=FIRST, monitor_seconds=16 * 86400, analysis={"interval_seconds": 300}).monitor_seconds


@pytest.mark.parametrize("late", [3600.0, 300.0], ids=["window-ended", "window-half-gone"])
def test_a_monitor_started_by_hand_on_an_owed_window_watches_what_is_left_of_it_not_a_new_one(monkeypatch, caplog,
                                                                                                late):
    """The run watching the window died. A person started the `monitor` flow: it watched a whole new
    window from now (the policy's 10 minutes, an hour by default), keeping the old service that long
    past a window that had ended, and its end named a fresh window. It watches what is left of the
    rollout's window, from the promotion, as `progressive_rollout` resuming it does, and says when
    the window ended (or ends)."""
    import logging

    from rollway.ledger import utc
    from rollway.spec import WeeklyPhase

    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy
    promoted_at = first.last_transition("promote").at
    env.clock.sleep(late)  # the run watching it died; nobody closed it
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"))
    assert result.outcome == "decommissioned", result.reason
    left = max(0.0, promoted_at + 600 - (promoted_at + late))
    assert env.clock.now() - (promoted_at + late) < left + 240, "watched what was left, not a new window"
    assert f"resumed {late / 60:g} minutes after the promotion" in result.reason, result.reason
    said = " ".join(r.getMessage() for r in caplog.records)
    assert f"{'ended' if late >= 600 else 'ends'} at {utc(promoted_at + 600)}" in said, said


def test_a_monitor_whose_target_group_the_load_balancer_does_not_know_stops_at_once(monkeypatch):
    """A targets block with a misspelt target group: every look of the window logged "could not read
    the metrics (... target group ... not found)" for its whole length, then the window ended
    unverified, recorded so and paged "Decommission skipped", as if CloudWatch had been throttled.
    A name the load balancer does not know is no read to try again: the run stops at once, naming it,
    with nothing watched, recorded or paged, and the window left open for a run with the right name."""
    from rollway.aws.errors import TargetNotFound

    env, first = promoted_world(monkeypatch)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)
    missing = TargetNotFound("target group", "webordinary-edit-canry-tg", "TargetGroupNotFound")

    def not_found(version):
        raise missing

    monkeypatch.setattr(env.router, "target_group", not_found)
    env.metrics.error = f"metrics unavailable: {missing}"  # as CloudWatchMetrics reads with that router
    opened = env.clock.now()
    with pytest.raises(MonitorRefused, match="target group 'webordinary-edit-canry-tg' not found: "
                                             "TargetGroupNotFound.*run the monitor again"):
        run_monitor_flow()
    assert env.clock.now() - opened < 60, "the run watched a window it could not read"
    assert not env.notifier.messages, env.notifier.messages
    record = env.ledger.get(env.targets.canary_service)
    assert (record.phase, record.owner, record.unverified_window) == (RolloutPhase.PROMOTED, None, None)
    assert [t.kind for t in record.history] == [t.kind for t in first.history]


def test_a_rollout_recorded_with_a_window_longer_than_cloudwatch_keeps_is_watched_not_refused(monkeypatch):
    """A rollout recorded before windows were held to CloudWatch's retention, its 16-day window at
    1-minute periods, its run dead just after the promotion: the monitor started with no
    window_seconds watches the window its record owes (and rolls the failing release back), as a
    resume does; it is not refused for a window_seconds nobody gave."""
    older = SPEC.model_copy(update={"monitor_seconds": 16 * 86400})  # recorded before the rule
    env, _ = promoted_world(monkeypatch, spec=older)
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert result.outcome == "rolled_back", result.reason
    assert env.router.weights == Weights(stable=100, canary=0)


def test_the_longest_window_a_refusal_offers_is_said_in_full_and_is_accepted():
    """:g's six digits said the window "1.3824e+06 s", and rounded the longest one allowed up
    (1295934.5 s read "1.29594e+06 s", 1295940 s, which is refused again)."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as refused:
        RolloutSpec(image=FIRST, monitor_seconds=16 * 86400, analysis={"metrics_delay_seconds": 65.5})
    said = str(refused.value)
    assert "a monitoring window of 1382400 s is longer than" in said, said
    assert "Watch at most 1295934.5 s (15 days less metrics_delay_seconds, 65.5 s)" in said, said
    assert RolloutSpec(image=FIRST, monitor_seconds=1295934.5, analysis={"metrics_delay_seconds": 65.5})


def _two_day_window_resumed_16_days_late(monkeypatch, throttled=lambda start, end: False):
    """A healthy release's two-day window at 1-minute periods, resumed sixteen days after the
    promotion: its first day is older than CloudWatch keeps (15 days); reads ``throttled`` fail.
    The run's result, when the window opened, and status's monitoring row after it."""
    from rollway.reports import monitoring_row

    day = 86400
    env, first = promoted_world(monkeypatch, spec=SPEC.model_copy(update={"monitor_seconds": 2 * day}))
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy all along
    observe = env.metrics.observe

    def kept_for_15_days(start, end):
        env.metrics.error = "metrics unavailable: ThrottlingException: Rate exceeded" if throttled(start, end) else None
        seen = observe(start, end)
        kept = env.clock.now() - 15 * day
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t - 60 >= kept)})

    env.metrics.observe = kept_for_15_days
    env.clock.sleep(16 * day)
    result = monitor(spec=SPEC.model_dump(mode="json"))
    row = " ".join(monitoring_row(env.ledger.get(env.targets.canary_service), env.clock.now(),
                                  wall=env.wall() + 3600).split())
    return result, first.last_transition("promote").at, row


def test_a_late_window_whose_minutes_aged_out_says_so_not_that_its_final_look_could_not_read_them(monkeypatch):
    """Resumed sixteen days after the promotion, a two-day window's first day was older than
    CloudWatch keeps 1-minute data; every read went through. Status said "its final look could not
    read the metrics of the window's periods from ... (older than CloudWatch keeps ...)", a failed
    read that never happened, which reads as a throttled CloudWatch to mend before looking again:
    it says the minutes had aged out, and nothing of a final look that read what it was asked."""
    from rollway.ledger import utc

    result, opened, row = _two_day_window_resumed_16_days_late(monkeypatch)
    assert not result.verified and "could not be read any more" in result.reason, result.reason
    assert "final look" not in result.reason, result.reason
    assert "final look" not in row, row
    assert (f"unverified: the window's periods from {utc(opened)} to " in row
            and "which no look had judged, were older than CloudWatch keeps 1-minute data for 15 days, so they were "
                "not judged;" in row), row


def test_a_late_window_whose_other_unjudged_minutes_could_not_be_read_names_the_aged_out_ones_too(monkeypatch):
    """Resumed sixteen days after the promotion, a two-day window's first day was older than
    CloudWatch keeps 1-minute data, and the read of its second day was throttled to the end. The
    ledger recorded only the throttled day, and status named only it, of a window whose first day
    nobody judged either: both are named."""
    from rollway.ledger import utc

    # The read of the window's unjudged minutes spans hours; a look's own is 6 minutes.
    result, opened, row = _two_day_window_resumed_16_days_late(monkeypatch,
                                                               throttled=lambda start, end: end - start > 600)
    assert not result.verified and "could not be read any more" in result.reason, result.reason
    assert "ThrottlingException" in row, row
    assert f"from {utc(opened)} to " in row and "older than CloudWatch keeps 1-minute data for 15 days" in row, row


def test_a_late_window_whose_final_look_could_not_read_names_the_last_period_beside_the_aged_out_minutes(monkeypatch):
    """Resumed sixteen days after the promotion, a two-day window's first day was older than
    CloudWatch keeps 1-minute data, and its final look could not read the window's last period
    however often it tried. The result named both; the ledger recorded only the aged-out day, and
    status gave CloudWatch's retention as why, with no word of the last period nor of the failure."""
    from rollway.reports import monitoring_row

    day = 86400
    env, first = promoted_world(monkeypatch, spec=SPEC.model_copy(update={"monitor_seconds": 2 * day}))
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy all along
    observe = env.metrics.observe
    env.clock.sleep(16 * day)
    resumed = env.clock.now()

    def kept_for_15_days_and_read_only_at_the_resume(start, end):
        env.metrics.error = None if env.clock.now() <= resumed else "metrics unavailable: ThrottlingException: Rate exceeded"
        seen = observe(start, end)
        kept = env.clock.now() - 15 * day
        return seen.model_copy(update={"intervals": tuple(i for i in seen.intervals if i.t - 60 >= kept)})

    env.metrics.observe = kept_for_15_days_and_read_only_at_the_resume
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert not result.verified and "could not be read any more" in result.reason, result.reason
    assert "ThrottlingException" in result.reason, result.reason
    row = " ".join(monitoring_row(env.ledger.get(env.targets.canary_service), env.clock.now(),
                                  wall=env.wall() + 3600).split())
    assert "older than CloudWatch keeps 1-minute data for 15 days" in row, row
    assert "ThrottlingException" in row, row


def _recorded_meanwhile(monkeypatch, *entries: tuple[str, str], then_throttled: bool = False):
    """The promoted world, on whose rollout other runs record ``entries`` (kind, actor) during the
    monitor's first sleep (and, ``then_throttled``, after which the ledger throttles every read)."""

    def recorded_elsewhere(env):
        for kind, actor in entries:
            env.ledger.record(env.targets.canary_service, owner=None, now=env.clock.now(),
                              transition=Transition(at=env.clock.now(), kind=kind, actor=actor))
        if then_throttled:
            def throttled(*args, **kwargs):
                raise RuntimeError("ThrottlingException: Rate exceeded")

            monkeypatch.setattr(env.ledger, "get", throttled)

    clock = Meanwhile(at=1, then=recorded_elsewhere)
    env, _ = promoted_world(monkeypatch, clock)
    clock.env = env
    return env


def _watched_after_another_run_closed(monkeypatch, *, then_throttled: bool = False):
    """A window that sees a breach after another run recorded the clean end of the rollout's
    window (and, ``then_throttled``, after which the ledger throttles every read)."""
    env = _recorded_meanwhile(monkeypatch, ("watched", "other-run"), then_throttled=then_throttled)
    watched = run_monitor_flow()
    assert watched.outcome != "rolled_back" and not watched.verified, watched
    assert "The release stays in production" in watched.reason, watched.reason
    assert env.router.weights == Weights(stable=0, canary=100)
    return env, watched


def test_a_window_another_run_closed_before_its_rollback_says_the_release_stays_in_production(monkeypatch):
    """The window saw a breach, but another run had closed the rollout's window (its clean end
    recorded) by the time this one came to roll back. Its result said "rolled_back" with the
    traffic 100/0 on the old version, while the release stayed in production at 0/100."""
    from flows.monitor import after_window
    from rollway.report import RolloutResult

    env, watched = _watched_after_another_run_closed(monkeypatch)
    promoted = RolloutResult(outcome="promoted", reason="promoted", image=FIRST, final_weights=Weights(stable=0,
                                                                                                      canary=100))
    result = after_window(promoted, watched)
    assert result.outcome == "promoted" and result.final_weights == Weights(stable=0, canary=100), result
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED


def test_a_window_another_run_closed_says_the_release_stays_in_production_when_the_ledger_then_throttles(
        monkeypatch):
    """As above, but the ledger throttles reads once the window is closed: the refusal itself says
    the rollout was promoted and its window closed, so the result no longer depends on a read
    after it (unread, it said "rolled_back" at 100/0 while the release stayed in production)."""
    _watched_after_another_run_closed(monkeypatch, then_throttled=True)


def _window_closed_by_another_run(monkeypatch):
    """The promoted world, whose window another run closes ("watched") during the monitor's first sleep."""
    def closed_elsewhere(env):
        env.ledger.record(env.targets.canary_service, owner=None, now=env.clock.now(),
                          transition=Transition(at=env.clock.now(), kind="watched", actor="other-run"))

    clock = Meanwhile(at=1, then=closed_elsewhere)
    env, _ = promoted_world(monkeypatch, clock)
    clock.env = env
    return env


def test_a_breach_whose_rollback_found_the_window_closed_pages_people_and_is_recorded(monkeypatch, capsys):
    """The same window: its breach was said only in the run's log. Nobody was paged, and the ledger
    kept nothing of it, so `rollway status` and the report showed a window that closed cleanly
    while the release that breached the guardrail stayed at 100 %."""
    env = _window_closed_by_another_run(monkeypatch)
    watched = run_monitor_flow()
    assert watched.outcome == "passed" and not watched.verified, watched
    [(subject, page)] = [(s, body) for s, body in env.notifier.messages if "not rolled back" in s]
    assert subject == f"Breach not rolled back: {env.targets.canary_service}", subject
    assert "guardrail" in page and "stays in production" in page and "`rollback` flow" in page, page
    # The page itself: the refusal's "this rollback neither moves the traffic nor pages anyone" in it
    # read as the page saying nobody was paged.
    assert "pages anyone" not in page, page
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED and env.router.weights == Weights(stable=0, canary=100)
    from rollway.reports import rollout_report
    from rollway.window_said import breach_said

    said = breach_said(record)
    assert said is not None and "guardrail" in said and "stays in production" in said, said
    assert "Breach not rolled back" in rollout_report(record), "the report names the breach left in production"
    from types import SimpleNamespace

    from rollway.cli.ops import print_status

    capsys.readouterr()
    print_status(SimpleNamespace(name=env.targets.canary_service, targets=env.targets), record,
                 Weights(stable=0, canary=100), None, limit=1)
    shown = " ".join(capsys.readouterr().out.split())
    assert "breach not rolled back:" in shown and "stays in production" in shown, shown


def test_a_late_window_whose_every_read_failed_names_the_aged_out_minutes_apart_from_the_unread_ones(monkeypatch):
    """Resumed sixteen days after the promotion, a two-day window's first day was older than
    CloudWatch keeps 1-minute data, and every read from the resume on was throttled. Its end said
    its final look "could not read the metrics" of the whole window from the promotion on: the first
    day could not be read by any look, however often, and sent people to mend CloudWatch and look
    again for minutes gone for good. It is named as aged out, and the unread minutes start after it."""
    from rollway.ledger import utc
    from rollway.reports import monitoring_row

    day = 86400
    env, first = promoted_world(monkeypatch, spec=SPEC.model_copy(update={"monitor_seconds": 2 * day}))
    env.metrics.behaviour = steady(5000, 0.001, 0.001)
    env.metrics.error = "metrics unavailable: ThrottlingException: Rate exceeded"
    env.clock.sleep(16 * day)
    opened = first.last_transition("promote").at
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert not result.verified, result
    assert f"the window's periods from {utc(opened)} to " in result.reason, result.reason
    assert "could not be read any more" in result.reason, result.reason
    assert f"could not read the metrics of the window's periods from {utc(opened)}" not in result.reason, result.reason
    seen = env.ledger.get(env.targets.canary_service).unverified_window
    assert seen.aged_out_from == opened and seen.unjudged_from is not None and seen.unjudged_from > opened, seen
    assert seen.unjudged_from == seen.aged_out_to, seen
    row = " ".join(monitoring_row(env.ledger.get(env.targets.canary_service), env.clock.now(),
                                  wall=env.wall() + 3600).split())
    assert "older than CloudWatch keeps 1-minute data for 15 days" in row and "ThrottlingException" in row, row


def test_a_breach_not_rolled_back_is_not_finalized_and_the_rollback_flow_takes_it_out(monkeypatch, capsys):
    """After that end, status and the report still said "not finalized: run `rollway finalize`", and
    finalize put the release that breached the guardrail onto the stable service without a word of
    the breach. Finalize refuses, naming the breach and the `rollback` flow; status and the report
    advise that flow, which takes the release out. Each says it once: the breach's entry carried a
    way out of its own, which they quoted beside theirs."""
    import flows.env
    import flows.rollback
    from flows.finalize import run_finalize
    from prefect import flow

    from rollway.finalize import FinalizeRefused
    from rollway.cli.ops import nothing_paused_next
    from rollway.reports import finalize_row, rollout_report

    env = _window_closed_by_another_run(monkeypatch)
    assert run_monitor_flow().outcome == "passed"
    record = env.ledger.get(env.targets.canary_service)
    row, report = finalize_row(record), " ".join(rollout_report(record).split())
    for said in (row, report, nothing_paused_next(record, None)):
        assert "`rollway finalize` (or the finalize deployment), which puts" not in said, said
        assert "`rollback` flow" in said, said

    @flow
    def finalize_it():
        return run_finalize(env, actor="alice", stable_timeout_seconds=5, verify_timeout_seconds=1)

    with pytest.raises(FinalizeRefused) as refused:
        finalize_it()
    message = str(refused.value)
    assert "guardrail" in message and "`rollback` flow" in message and "Nothing was changed" in message, message
    from types import SimpleNamespace

    from rollway.cli.ops import print_status

    capsys.readouterr()
    print_status(SimpleNamespace(name=env.targets.canary_service, targets=env.targets), record,
                 Weights(stable=0, canary=100), None, limit=5)
    status = " ".join(capsys.readouterr().out.split())
    for where, said in (("status", status), ("report", report), ("finalize", message)):
        assert said.count("`rollback` flow") == 1 and "to take it out" not in said, (where, said)
    assert env.deployer.services[env.targets.stable_service].task_definition == STABLE_TD
    assert env.router.weights == Weights(stable=0, canary=100)

    for module in (flows.env, flows.rollback):
        monkeypatch.setattr(module, "load_environment", lambda *a, **k: env)
    flows.rollback.rollback(reason="the breach", actor="erin")
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_window_resumed_days_after_its_end_names_only_its_own_periods_as_unread(monkeypatch):
    """A two-day window resumed five days after the promotion (CloudWatch still keeps every minute of
    it), every read throttled: its end said the final look could not read "the window's periods"
    from the promotion to the resume, three days past the window's end, as if they were the window's."""
    from rollway.ledger import utc

    day = 86400
    env, first = promoted_world(monkeypatch, spec=SPEC.model_copy(update={"monitor_seconds": 2 * day}))
    env.metrics.error = "metrics unavailable: ThrottlingException: Rate exceeded"
    env.clock.sleep(5 * day)
    opened = first.last_transition("promote").at
    result = monitor(spec=SPEC.model_dump(mode="json"))
    assert not result.verified, result
    seen = env.ledger.get(env.targets.canary_service).unverified_window
    assert seen.unjudged_from == opened, seen
    # The window's own end, give or take the few minutes a look reads past it: not the resume's time.
    assert opened + 2 * day <= seen.unjudged_to <= opened + 2 * day + 3600, (utc(seen.unjudged_to), seen)
    assert f"from {utc(opened)} to {utc(seen.unjudged_to)}" in result.reason, result.reason


def _window_closed_and_finalize_begun(monkeypatch, *, then_throttled: bool = False):
    """The promoted world, whose window another run closes cleanly and whose finalize then begins
    (carol's), during the monitor's first sleep: the breach this run sees is recorded after both
    (and, ``then_throttled``, the ledger throttles every read from then on)."""
    return _recorded_meanwhile(monkeypatch, ("watched", "other-run"), ("finalize-start", "carol"),
                               then_throttled=then_throttled)


def test_a_breach_recorded_after_a_finalize_began_is_paged_with_finalizes_way_out_and_recorded_as_facts(monkeypatch):
    """The finalize begun before the breach was recorded may have put the release on the stable
    service: "run the `rollback` flow to take it out", in the page and the ledger, sent people to a
    flow that would then move the traffic onto the release, not away from it. The ledger's entry
    holds the facts alone: a way out written into it went stale once a finalize ran, and read
    beside the one status, the report and finalize say."""
    from rollway.finalize import breach_way_out

    env = _window_closed_and_finalize_begun(monkeypatch)
    watched = run_monitor_flow()
    assert watched.outcome == "passed" and not watched.verified, watched
    [page] = [body for s, body in env.notifier.messages if s.startswith("Breach not rolled back")]
    record = env.ledger.get(env.targets.canary_service)
    comment = record.last_transition("breach-not-rolled-back").comment
    for where, words in (("page", page), ("ledger", comment), ("result", watched.reason)):
        assert "to take it out" not in words, (where, words)
    for where, words in (("page", page), ("result", watched.reason)):
        assert "may run the release that breached already" in words, (where, words)
        assert breach_way_out(record) in words, (where, words)
    assert "guardrail" in comment and comment.endswith("The release stays in production"), comment
    assert "`rollback` flow" not in comment and "--accept-breach" not in comment, comment


def test_a_breach_after_a_finalize_began_claims_nothing_of_the_stable_service_when_the_ledger_reads_fail(
        monkeypatch):
    """As above, with the ledger throttling every read: what the finalize did is unknown, so the
    page says so instead of sending people to the `rollback` flow as if the stable service ran the
    previous version."""
    env = _window_closed_and_finalize_begun(monkeypatch, then_throttled=True)
    watched = run_monitor_flow()
    assert watched.outcome == "passed" and not watched.verified, watched
    [page] = [body for s, body in env.notifier.messages if s.startswith("Breach not rolled back")]
    assert not page.endswith("The release stays in production; run the `rollback` flow to take it out"), page
    assert "still on the previous version" not in page, page
    assert "if one did, the stable service may run the release already" in page, page
    assert "the ledger could not be read (" in page and "ThrottlingException" in page, page
