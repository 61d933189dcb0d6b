"""The weekly schedule (`advance`, the `advance_phase` flow) against its calendar, a kill at a
phase's end, and its hooks' rollback when the ledger cannot be read.

- Weeks are the rollout's own `weekly_timezone` weeks (the zone its Monday cron fires in), not UTC's.
- A run killed after its phase's last stage passed and before the phase was recorded complete
  costs nothing: the next tick (or the watchdog) records the phase complete and starts the next
  one when it would have started without the kill.
- `advance_phase` takes the rollout's spec, whose bound flags its hooks' rollback disables when
  the ledger cannot be read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import uuid
import logging
from zoneinfo import ZoneInfo

import pytest
from prefect import flow, get_client
from prefect.states import Crashed

from flows.progressive import advance, advance_phase, run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeFlagStore
from rollway.flags import FlagState
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.test_hooks_on_closed_and_old_records import ThrottledLedger
from tests.flows.test_progressive_fakes import Intercept, Killed, env_with_ledger, full_spec, shifts
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
H = 3600


def at(zone: str, *parts: int) -> float:
    return dt.datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp()


@flow
def first_run(env, spec, owner="run-1"):
    return run_progressive(env, spec, auto_approve("alice"), owner=owner, actor="alice", phased=True)


@flow
def tick(env, owner):
    return advance(env, auto_approve("carol"), owner=owner)


# --- 1. the calendar is the rollout's zone's -------------------------------------------------

@pytest.mark.parametrize("zone,started,cron,min_phase_seconds,starts_week_2", [
    # Auckland's Monday 09:00 is Sunday 20:00 UTC: a week 1 started on Monday afternoon there
    # (Monday 01:00 UTC) is "this week" on a UTC calendar at the next Monday's cron, and the
    # schedule did nothing for another week.
    ("Pacific/Auckland", (2027, 1, 11, 14, 0), (2027, 1, 18, 9, 0), None, True),
    # Berlin's Monday 00:30 (summer time) is Sunday 22:30 UTC: on a UTC calendar the 09:00 cron
    # the same morning is a new week, and the "week 1" ended after eight and a half hours.
    ("Europe/Berlin", (2027, 3, 29, 0, 30), (2027, 3, 29, 9, 0), 6 * H, False),
    ("Europe/Berlin", (2027, 3, 22, 9, 0), (2027, 3, 29, 9, 0), None, True),  # the week of the March switch
    ("America/Los_Angeles", (2027, 1, 17, 18, 0), (2027, 1, 18, 9, 0), 6 * H, True),  # Sunday evening there
    ("Asia/Kolkata", (2027, 1, 18, 2, 0), (2027, 1, 18, 9, 0), 6 * H, False),  # Monday 02:00 there
])
def test_the_schedule_starts_the_next_phase_on_the_rollouts_own_calendar(zone, started, cron, min_phase_seconds,
                                                                         starts_week_2):
    env = env_with_ledger()
    spec = full_spec().model_copy(update={"weekly_timezone": zone})
    if min_phase_seconds is not None:
        spec = spec.model_copy(update={"min_phase_seconds": min_phase_seconds})
    env.clock.t = at(zone, *started)
    assert first_run(env, spec).outcome == "holding"
    env.clock.t = at(zone, *cron)
    result = tick(env, "cron-1")
    record = env.ledger.get(env.targets.canary_service)
    assert (record.weekly_phase_index == 1) == starts_week_2, (
        f"{zone}: week 1 started {started}, cron {cron} local: advance returned {result and result.outcome}, "
        f"weekly phase {record.weekly_phase_index + 1}, shifts {shifts(env)}")
    assert shifts(env) == ([5, 25, 50] if starts_week_2 else [5])


# --- 2. a kill between the last stage's pass and the phase's completion --------------------

def dies_recording_the_phase_complete(armed: list[bool]):
    """An Intercept hook for the ledger: the process dies on the write that records the phase
    complete (stage_passed was written just before), once."""

    def hook(name, args, kwargs):
        if armed and name == "record" and kwargs.get("weekly_phase_passed") is True:
            armed.clear()
            raise Killed("the node is lost after the phase's last stage passed, before the phase was recorded complete")

    return hook


MONDAY = (2027, 1, 11, 9, 0)  # the cron: Mondays 09:00 UTC
WEEK = 7 * 24 * H


def _state(env):
    r = env.ledger.get(env.targets.canary_service)
    return r.phase, r.weekly_phase_index, r.weekly_phase_started_at, r.weekly_phase_passed, r.weights


def _timeline(kill_in_phase: int | None, watchdog_midweek: bool):
    """Week 1 starts on a Monday's cron, week 2 and week 3 on the next Mondays'; optionally a
    watchdog run on the Wednesday after the kill. The ledger's phase state after each event."""
    env = env_with_ledger()
    real, armed = env.ledger, []
    env.ledger = Intercept(real, dies_recording_the_phase_complete(armed))
    states = []
    for week in range(3):
        env.clock.t = at("UTC", *MONDAY) + week * WEEK
        if week == kill_in_phase:
            armed.append(True)
        try:
            if week == 0:
                first_run(env, full_spec())
            else:
                tick(env, f"cron-{week}")
        except Killed:
            record = real.get(env.targets.canary_service)
            assert (record.phase, record.stage_passed, record.weekly_phase_passed, record.history[-1].kind) == (
                RolloutPhase.PROGRESSING, True, False, "verdict"), "killed exactly between the two writes"
        states.append(_state(env))
        if watchdog_midweek:
            env.clock.t = at("UTC", *MONDAY) + week * WEEK + 2 * 24 * H
            tick(env, f"watchdog-{week}")
            states.append(_state(env))
    return states, shifts(env)


@functools.cache
def _without_a_kill(watchdog_midweek: bool):
    return _timeline(None, watchdog_midweek)


@pytest.mark.parametrize("kill_in_phase,watchdog_midweek", [(0, False), (1, False), (0, True)],
                         ids=["week-1-next-tick", "week-2-next-tick", "week-1-watchdog-midweek"])
def test_a_kill_between_stage_passed_and_phase_complete_costs_no_week(kill_in_phase, watchdog_midweek):
    """Without the fix the next tick resumed the dead run, which recorded the phase complete and
    stopped: the next phase started a week late (week 3 never ran within the three Mondays).
    A watchdog run in the same week as the kill already completed the phase (and must still
    start nothing until Monday)."""
    expected, expected_shifts = _without_a_kill(watchdog_midweek)
    after_week_3 = expected[-2] if watchdog_midweek else expected[-1]
    assert expected_shifts == [5, 25, 50, 75, 100] and after_week_3[0] is RolloutPhase.PROMOTED
    states, got_shifts = _timeline(kill_in_phase, watchdog_midweek)
    # Week by week the phase state (which phase, when it started, whether it passed, the
    # weights) is what it would have been without the kill; the kill's own row is compared
    # after the tick or watchdog that repaired it.
    killed_row = kill_in_phase * (2 if watchdog_midweek else 1)
    for i, (got, want) in enumerate(zip(states, expected)):
        if i == killed_row:
            continue
        assert got == want, f"event {i}: {got} != {want} (kill in phase {kill_in_phase + 1}); shifts {got_shifts}"
    assert got_shifts == expected_shifts


def test_a_resumed_phase_that_was_not_done_yet_does_not_start_the_next_one_the_same_tick():
    """Only a phase whose stages had all passed is completed and followed on the same tick: a
    dead run's phase that still had a stage to bake holds its last weight for a week, as usual."""
    env = env_with_ledger()
    env.clock.t = at("UTC", *MONDAY)
    first_run(env, full_spec())
    env.clock.t += WEEK
    real = env.metrics
    seen = []

    def dies_at_50(name, args, kwargs):
        if name == "observe" and env.router.weights.canary == 50 and not seen:
            seen.append(True)
            raise Killed("lost while 50% bakes")

    env.metrics = Intercept(real, dies_at_50)
    with pytest.raises(Killed):
        tick(env, "cron-1")
    env.metrics = real
    env.clock.t += WEEK
    assert tick(env, "cron-2").outcome == "holding"
    record = env.ledger.get(env.targets.canary_service)
    assert (record.weekly_phase_index, record.weekly_phase_passed, shifts(env)) == (1, True, [5, 25, 50])


# --- 3. advance_phase's spec: the hooks' fallback -------------------------------------------

FEATURE = "use_sqs_architecture"


def _two_weeks(flags=()):
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 50, 100)],
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(50, 100))],
                       flags=list(flags), monitor_seconds=0, verify_timeout_seconds=0.5, healthy_timeout_seconds=0.5)


def _week_one_with_a_bound_flag(monkeypatch):
    env = fake_environment()
    env.ledger = ThrottledLedger()
    env.flags = FakeFlagStore([FlagState(feature=FEATURE)])
    hooks_and_flows_see(monkeypatch, env)
    spec = _two_weeks([FlagBinding(feature=FEATURE)])
    env.clock.t = at("UTC", *MONDAY)
    assert first_run(env, spec).outcome == "holding" and env.flags.flags[FEATURE].percentage == 5
    env.clock.t += WEEK
    return env, spec


def test_an_advance_whose_hook_cannot_read_the_ledger_disables_the_flags_of_the_spec_it_was_given(monkeypatch):
    """Week 2 fails at 50 % and DynamoDB throttles the hook's first read. The hook rolls the
    visible canary back on what the run's parameters say; advance_phase had no spec parameter,
    so the flag bound to the rollout stayed on for 50 % of users."""
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    real_observe = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 50:
            env.ledger.fail_reads = 1  # the hook's rollback reads first, and is throttled
            raise RuntimeError("a bug mid-stage")
        return real_observe(start, end)

    env.metrics.observe = observe
    with pytest.raises(RuntimeError, match="a bug mid-stage"):
        advance_phase(spec=spec.model_dump(mode="json"))
    assert env.router.weights == Weights(stable=100, canary=0), "the hook rolled the visible canary back"
    flag = env.flags.flags[FEATURE]
    assert not flag.enabled, f"traffic rolled back but {FEATURE} is still on at {flag.percentage}%"


def test_an_advance_given_another_images_spec_says_so_and_drives_the_recorded_one(monkeypatch, caplog):
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    other = _two_weeks().model_copy(update={"image": "webordinary/edit-container:3.0.0"})
    with caplog.at_level(logging.WARNING):
        result = advance_phase(spec=other.model_dump(mode="json"))
    assert result.outcome == "promoted" and env.ledger.get(env.targets.canary_service).image == IMAGE
    said = [r.getMessage() for r in caplog.records if "the recorded spec governs" in r.getMessage()]
    assert said and "3.0.0" in said[0] and IMAGE in said[0], caplog.text


def test_an_advance_given_an_edited_spec_of_the_same_image_names_what_it_does_not_follow(monkeypatch, caplog):
    """A platform engineer edits the advance_phase deployment's spec between weeks (a stricter alpha,
    a longer approval timeout) and leaves the image: the run drove the recorded spec and said
    nothing, in its log or its artifacts, so the edit seemed to govern week 2."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from flows.journal import artifact_key

    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    edited = spec.model_copy(update={"analysis": spec.analysis.model_copy(update={"alpha": 0.001}),
                                     "approvals": spec.approvals.model_copy(update={"timeout_seconds": 7200})})
    with caplog.at_level(logging.WARNING):
        state = advance_phase(spec=edited.model_dump(mode="json"), return_state=True)
    assert state.result().outcome == "promoted" and env.ledger.get(env.targets.canary_service).image == IMAGE
    said = [r.getMessage() for r in caplog.records if "the recorded spec governs" in r.getMessage()]
    assert said and "recorded in analysis, approvals: the recorded spec governs this run" in said[0], caplog.text
    with get_client(sync_client=True) as client:
        shown = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[artifact_key(env.targets.canary_service, "spec-not-followed")]),
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    assert len(shown) == 1, shown
    page = shown[0].data
    assert "the recorded spec governs" in page and "| approvals |" in page and "| analysis |" in page, page
    assert '"alpha":0.001' in page and '"alpha":0.01' in page, page


def test_an_advance_given_the_recorded_spec_says_nothing_of_it(monkeypatch, caplog):
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert advance_phase(spec=spec.model_dump(mode="json")).outcome == "promoted"
    assert "the recorded spec governs" not in caplog.text, caplog.text

def test_an_advance_spec_with_an_unknown_timezone_is_refused_before_the_run(monkeypatch):
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    bad = spec.model_dump(mode="json") | {"weekly_timezone": "Europe/Berln"}
    state = advance_phase(spec=bad, return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in (state.message or "")
    assert "weekly_timezone" in state.message
    assert env.router.weights == Weights.canary_at(5) and env.flags.flags[FEATURE].percentage == 5


def test_a_tick_whose_holder_prefect_no_longer_has_goes_on_and_rolls_nothing_back(monkeypatch, caplog):
    """A run took the rollout after week 1 and died; its flow run was then deleted from the UI.
    The Monday tick asked Prefect whether that run had ended, got ObjectNotFound, failed with
    "ObjectNotFound: None", and its hook rolled back the healthy rollout. Prefect cannot say, so
    the lapsed lease decides, as for an owner that is not a flow run: week 2 starts."""
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    with get_client(sync_client=True) as client:
        gone = client.create_flow_run(flow=first_run, state=Crashed())
        client.delete_flow_run(gone.id)
    service = env.targets.canary_service
    env.ledger.acquire(service, owner=f"flow-run/{gone.id}", now=env.clock.now() - WEEK / 2, lease_seconds=600,
                       wall=env.wall() - 3600)
    with caplog.at_level(logging.WARNING):
        state = advance_phase(spec=spec.model_dump(mode="json"), return_state=True)
    record = env.ledger.get(service)
    assert state.is_completed(), state.message
    assert record.phase is RolloutPhase.PROMOTED and [t for t in record.history if t.kind == "rollback"] == []
    assert env.router.weights == Weights(stable=0, canary=100) and env.flags.flags[FEATURE].enabled
    said = [r.getMessage() for r in caplog.records if str(gone.id) in r.getMessage()]
    assert said and "its lease decides" in said[0], caplog.text


@contextlib.contextmanager
def _advance_phase_deployed(weekly_timezone: str):
    """serve.py's advance_phase deployment, its weekly schedule in ``weekly_timezone``, on the API
    while in the block (its id); deleted after, so that no later test's run compares with it."""
    from deployments.serve import build_deployments

    (deployment,) = [d for d in build_deployments(weekly_timezone=weekly_timezone, schedules_active=True)
                     if d.flow_name == "advance_phase"]
    deployment_id = deployment.apply()
    try:
        yield deployment_id
    finally:
        with get_client(sync_client=True) as client:
            client.delete_deployment(deployment_id)


def _scheduled_advance_phase_run(weekly_timezone: str):
    """A run of serve.py's advance_phase deployment (its weekly schedule in ``weekly_timezone``),
    created on the API as the scheduler creates one, and executed in this process."""
    from prefect.flow_engine import run_flow

    with _advance_phase_deployed(weekly_timezone) as deployment_id:
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment_id)
        return run_flow(advance_phase, flow_run=run, parameters={}, return_type="state")


@pytest.mark.parametrize("cron_zone, warned", [("UTC", True), ("America/New_York", False)])
def test_a_tick_whose_schedule_fires_in_another_zone_than_the_rollouts_weeks_says_so(monkeypatch, caplog, cron_zone,
                                                                                   warned):
    """The advance_phase schedule fires Mondays 09:00 UTC; the rollout counts New York's weeks.
    Nothing compared the two: each phase started, and asked its approvals, at 04:00 or 05:00 in New
    York, where an unanswered pause rolls back an hour later. The tick says so, naming both zones
    and the fix, and goes on (a refusal would stop the rollout every Monday)."""
    env = env_with_ledger()
    hooks_and_flows_see(monkeypatch, env)
    spec = _two_weeks().model_copy(update={"weekly_timezone": "America/New_York"})
    env.clock.t = at("America/New_York", *MONDAY)
    assert first_run(env, spec).outcome == "holding"
    env.clock.t += WEEK
    with caplog.at_level(logging.WARNING):
        state = _scheduled_advance_phase_run(cron_zone)
    assert state.is_completed(), state.message
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED
    said = [r.getMessage() for r in caplog.records if "weekly schedule" in r.getMessage()]
    if not warned:
        assert said == [], said
        return
    assert said and "advance_phase's weekly schedule ('0 9 * * MON') fires in UTC, but the rollout counts its " \
                     "calendar weeks in America/New_York" in said[0], said
    assert " 09:00 UTC is Mon " in said[0] and (" 04:00 EST " in said[0] or " 05:00 EDT " in said[0]), said[0]
    assert "serve.py --weekly-timezone America/New_York" in said[0], said[0]


def test_a_new_rollout_on_other_weeks_than_the_schedules_zone_is_warned_of_as_it_starts(monkeypatch, caplog):
    """The first moment the rollout's zone can be compared with the schedule's, and the last at
    which it is free to change: the rollout records it. Said as the rollout starts, not a week later."""
    from flows.progressive import progressive_rollout

    env = env_with_ledger()
    hooks_and_flows_see(monkeypatch, env)
    spec = _two_weeks().model_copy(update={"weekly_timezone": "Asia/Kolkata"})
    env.clock.t = at("Asia/Kolkata", *MONDAY)
    with _advance_phase_deployed("UTC"), caplog.at_level(logging.WARNING):
        assert progressive_rollout(spec=spec.model_dump(mode="json")).outcome == "holding"
    said = [r.getMessage() for r in caplog.records if "weekly schedule" in r.getMessage()]
    assert said and "fires in UTC, but the rollout counts its calendar weeks in Asia/Kolkata" in said[0], said
    assert "(this rollout, which starts now; or start it with the schedule's zone as its weekly_timezone)" in said[0]
    assert " 09:00 UTC is Mon " in said[0] and " 14:30 IST " in said[0], said[0]


# --- the rollout clock against the wall calendar ---------------------------------------------

class FastClock:
    """A fake clock that says it runs 60x wall time, as `make up`'s ScaledClock does."""

    speed = 60.0

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def test_a_run_by_hand_on_a_fast_clock_that_finds_nothing_to_do_says_when_in_wall_time(caplog):
    """At 60x a rollout week passes in under three wall hours while the cron fires on the wall
    calendar: a run by hand in between only said "this week's phase already started"."""
    env = env_with_ledger()
    env.clock = FastClock(at("UTC", *MONDAY))
    assert first_run(env, full_spec()).outcome == "holding"
    env.clock.t += 24 * H  # Tuesday on the rollout clock, 24 wall minutes later
    with caplog.at_level(logging.INFO):
        assert tick(env, "by-hand") is None
    said = [r.getMessage() for r in caplog.records if "nothing to do" in r.getMessage()]
    assert said and "Mon 2027-01-18 00:00 UTC" in said[-1] and "60x wall time" in said[-1], said
    wall_minutes = (at("UTC", 2027, 1, 18, 0, 0) - env.clock.now()) / 60 / 60  # rollout seconds / 60 / 60
    assert f"about {wall_minutes:.0f} wall minutes from now" in said[-1], said[-1]


def test_a_quick_run_by_hand_is_not_recorded_as_the_schedule(monkeypatch):
    """A person's quick run of advance_phase from the UI leaves the form's actor, "schedule":
    week 2's start was recorded as the schedule's, and the report could not tell them apart."""
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    advance_phase()  # called directly: a run no deployment schedule created
    record = env.ledger.get(env.targets.canary_service)
    started = [t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2")]
    assert started and started[-1].actor.startswith("started by hand (flow run "), started


def test_the_report_names_the_run_that_started_a_weekly_phase_by_that_start(monkeypatch):
    """The advance_phase run that started week 2 recorded the start without naming itself: the
    report listed it by a later entry ("first entry: pause", at the week's first approval), as if
    the phase had started with no run behind it, or not at all when it ended without one."""
    from rollway.reports import rollout_report

    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    advance_phase()
    record = env.ledger.get(env.targets.canary_service)
    started = next(t for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2"))
    assert started.run is not None and started.actor.endswith(f"(flow run {started.run.split(' (')[0]})"), started
    assert f"`{started.run}` (first entry: phase, " in rollout_report(record), rollout_report(record)


def test_a_run_the_schedule_created_and_a_typed_name_keep_their_actor():
    from prefect.client.schemas.objects import FlowRun

    from flows.env import tick_actor

    scheduled = FlowRun(name="calm-otter", flow_id=uuid.uuid4(), auto_scheduled=True)
    by_hand = FlowRun(name="brisk-heron", flow_id=uuid.uuid4(), auto_scheduled=False)
    assert tick_actor("schedule", scheduled) == "schedule"
    assert tick_actor("schedule", by_hand) == "started by hand (flow run brisk-heron)"
    assert tick_actor("bob", by_hand) == "bob"


def test_a_hooks_rollback_whose_page_fails_says_the_traffic_is_back(monkeypatch, caplog):
    """Week 2 fails at 50 %; its hook moves the traffic back, and only the SNS page fails. The hook
    logged "automatic rollback ... failed; run `rollway abort` by hand", as if users were still
    on the canary."""
    env, spec = _week_one_with_a_bound_flag(monkeypatch)
    real_observe = env.metrics.observe

    def observe(start, end):
        if env.router.weights.canary == 50:
            raise RuntimeError("a bug mid-stage")
        return real_observe(start, end)

    real_notify = env.notifier.notify

    def sns_down_for_the_page(subject, message):
        if subject.startswith("Rollback"):
            raise RuntimeError("SNS is down")
        return real_notify(subject, message)

    env.metrics.observe = observe
    monkeypatch.setattr(env.notifier, "notify", sns_down_for_the_page)
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError, match="a bug mid-stage"):
        advance_phase(spec=spec.model_dump(mode="json"))
    assert env.router.weights == Weights(stable=100, canary=0)
    said = caplog.text
    assert "rolled back the traffic after run" in said and "but later steps failed" in said, said
    assert "automatic rollback after" not in said, said


# --- 4. the stable service's count, read again at each phase's start ----------------------------


def week_three_due_with_the_stable_service_grown_to_20():
    """Weeks 1 and 2 run on a stable service of 4 tasks, then autoscaling takes it to 20; week 3 is due."""
    env = env_with_ledger()
    t = env.targets
    env.clock.t = at("UTC", 2027, 1, 11, 9, 0)
    assert first_run(env, full_spec()).outcome == "holding"
    env.clock.t += WEEK
    assert tick(env, "cron-1").outcome == "holding"
    assert env.deployer.services[t.canary_service].desired == 2  # 50 % of 4
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"desired": 20, "running": 20})
    env.clock.t += WEEK
    return env


def test_a_stable_service_scaled_out_during_a_week_sizes_the_canary_of_the_next_phase_for_its_new_count(caplog):
    """Autoscaling took the stable service from 4 to 20 tasks during week 2. Week 3's stages used to
    size the canary for the 4 recorded at the rollout's start (3 tasks for 75 %, one task carrying
    what 5 of the old version carry); the count is read again when the phase starts, recorded, and
    said, and the canary already carrying 50 % is scaled for it there, not at its next shift."""
    env = week_three_due_with_the_stable_service_grown_to_20()
    t = env.targets
    caplog.set_level(logging.INFO)
    result = tick(env, "cron-2")
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(t.canary_service)
    assert record.stable_desired == 20
    assert f"{t.stable_service} runs 20 tasks now, not the 4 recorded" in caplog.text, caplog.text
    # Sized for 20 at 75 % (15 tasks) before the promotion: the canary then carries everything on 20.
    scaled = [c for c in env.deployer.calls if c.startswith(f"update_service {t.canary_service}")]
    assert any("desired=15" in c for c in scaled), scaled
    assert "someone scaled it down since" not in caplog.text, caplog.text


def test_a_canary_resize_ecs_refuses_at_a_phase_start_leaves_the_phase_to_go_on(caplog):
    """The stable service grew, and ECS refuses the canary's resize at week 3's start: the tick
    failed there (and, as a flow, its hooks rolled a healthy canary back), where the next shift
    sizes the canary for the new count anyway."""
    from botocore.exceptions import ClientError

    env = week_three_due_with_the_stable_service_grown_to_20()
    t = env.targets
    real_update, refused = env.deployer.update_service, []

    def refuse_the_resize(service, **changes):
        if service == t.canary_service and not refused:
            refused.append(changes)
            raise ClientError({"Error": {"Code": "ClientException", "Message": "no capacity"}}, "UpdateService")
        return real_update(service, **changes)

    env.deployer.update_service = refuse_the_resize
    caplog.set_level(logging.INFO)
    result = tick(env, "cron-2")
    assert [changes["desired"] for changes in refused] == [10], refused
    assert result.outcome == "promoted", result.reason
    assert f"could not scale {t.canary_service} to 10 tasks for the 50% it carries now" in caplog.text, caplog.text
    scaled = [c for c in env.deployer.calls if c.startswith(f"update_service {t.canary_service}")]
    assert any("desired=15" in c for c in scaled), scaled
