"""Weekly phases at their edges: runs that go on past a completed phase, a phase started late
in a week, and a first run that died before its first phase.

The weekly `advance_phase` run is the rollout's watchdog and its calendar: it leaves a live run
alone (one paused for an approval renews no lease), resumes a dead one the way it ran (phased
or every stage now), and starts the next phase once the current one passed, ran at least
`min_phase_seconds` and began in an earlier calendar week.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

import pytest
from prefect import flow

from flows.progressive import DriftDetected, PhaseRefused, advance
from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.ledger import Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.test_progressive_fakes import (
    WEEK, Intercept, Killed, advance_on, env_with_ledger, full_spec, killed_while_baking, progressive_on, shifts,
)
from tests.flows.test_weekly_schedule import dies_recording_the_phase_complete, first_run


@flow
def watchdog(env, approver, owner, finished):
    return advance(env, approver, owner=owner, owner_finished=finished)


def test_an_unphased_run_started_from_a_completed_phase_that_died_is_resumed_unphased():
    """Week 1 holds at 5 %. alice then runs every remaining stage now (phased=false, the
    README's "a run that goes on past a completed phase"); the run dies while 75 % bakes.
    README: the ledger records that the run was unphased, so the watchdog resumes it the same
    way (an unphased run is not held back to the weekly plan). Here the schedule instead starts
    "week 2" phased, holds at 75 % and needs yet another week."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    killed_while_baking(env, 75, auto_approve("alice"), owner="run-2", phased=False)
    assert shifts(env) == [5, 25, 50, 75]
    record = env.ledger.get(env.targets.canary_service)
    assert record.phased is False  # the ledger knows the run was unphased

    env.clock.sleep(601)  # lease gone
    outcomes = [watchdog(env, auto_approve("carol"), "cron-1", lambda owner: True)]
    if outcomes[-1] is None or outcomes[-1].outcome != "promoted":
        env.clock.sleep(WEEK)
        outcomes.append(watchdog(env, auto_approve("carol"), "cron-2", lambda owner: True))
    record = env.ledger.get(env.targets.canary_service)
    assert outcomes[-1] is not None and outcomes[-1].outcome == "promoted", (
        f"watchdog outcomes {[o and o.outcome for o in outcomes]}; rollout {record.phase.value} at "
        f"{record.weights}, phased={record.phased}, weekly phase {record.weekly_phase_index + 1} "
        f"passed={record.weekly_phase_passed}"
    )


def test_the_schedule_leaves_alone_an_unphased_run_waiting_for_an_approval():
    """Week 1 holds at 5 %. alice goes on with phased=false; her run pauses for the approval
    before 25 % (a pause renews no lease). The Monday schedule fires while she thinks.
    README: "a run waiting for an approval is left alone". Here the schedule takes the rollout
    from the live paused run (it never asks owner_finished), starts week 2 and moves traffic;
    alice's approval is then thrown away (RolloutMovedOn)."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    seen: dict = {}

    def alice(pause, summary):
        if "cron" not in seen:
            env.clock.sleep(WEEK)  # she answers after the weekend; Monday's schedule runs meanwhile
            seen["asked_owner"] = []
            try:
                seen["cron"] = watchdog(env, auto_approve("carol"), "cron-1",
                                        lambda owner: seen["asked_owner"].append(owner) or False)
            except PhaseRefused:  # refusing (the phase in progress has not passed) also leaves it alone
                seen["cron"] = None
            seen["after_cron"] = env.ledger.get(env.targets.canary_service)
        return ApprovalAnswer(action="approve", approver="alice", comment="go")

    progressive_on(env, full_spec(), alice, owner="run-2", phased=False, return_state=True)
    after = seen["after_cron"]
    assert seen["cron"] is None and after.owner == "run-2" and after.weekly_phase_index == 0, (
        f"the schedule ran while run-2 waited for alice: it returned "
        f"{seen['cron'] and seen['cron'].outcome!r}, owner now {after.owner!r}, weekly phase "
        f"{after.weekly_phase_index + 1}, weights {after.weights}, shifts {shifts(env)}; "
        f"owner_finished asked about {seen['asked_owner']}"
    )


def _utc(*parts) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


def test_a_week_1_started_on_sunday_evening_is_not_ended_by_mondays_schedule():
    """alice starts the rollout on Sunday 23:00 UTC; week 1 (5 %) passes its 3-minute bake.
    The Monday 09:00 UTC schedule, ten hours later, starts week 2 (25 %, 50 %): "week 1" lasted
    ten hours. advance() compares ISO calendar weeks of the phase's start and of now."""
    env = env_with_ledger()
    env.clock.t = _utc(2027, 1, 17, 23, 0)  # a Sunday
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.t = _utc(2027, 1, 18, 9, 0)  # Monday 09:00 UTC, the cron
    advance_on(env, auto_approve("carol"), "cron-1")
    record = env.ledger.get(env.targets.canary_service)
    hours = (env.clock.now() - record.history[2].at) / 3600
    assert shifts(env) == [5], (
        f"week 2 started {hours:.0f} h after week 1: shifts {shifts(env)}, weekly phase {record.weekly_phase_index + 1}"
    )


def test_the_watchdog_resumes_a_rollout_whose_first_run_died_before_deploying():
    """The first run records the rollout (pending) and dies while registering the task definition.
    README: the weekly advance_phase is the rollout's watchdog. Here it refuses every Monday with
    "phase 0 has not passed (pending ...)", and nothing resumes the rollout."""
    env = env_with_ledger()
    real = env.deployer

    def dies_registering(name, args, kwargs):
        if name == "register_revision":
            raise Killed("the node is lost while registering the canary's task definition")

    env.deployer = Intercept(real, dies_registering)
    with pytest.raises(Killed):
        progressive_on(env, full_spec(), auto_approve("alice"), phased=True)
    env.deployer = real
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PENDING
    env.clock.sleep(WEEK)
    try:
        result = watchdog(env, auto_approve("carol"), "cron-1", lambda owner: True)
    except PhaseRefused as refused:
        pytest.fail(f"the watchdog refused instead of resuming the dead run: {refused}")
    assert result is not None and shifts(env) == [5]


def test_a_phased_rerun_of_a_rollout_past_its_weekly_phase_runs_the_phase_its_stage_is_in():
    """alice runs every stage now (phased=false); the run dies while 75 % bakes (week 3's
    stage). She starts progressive_rollout again from the UI, whose default is phased=true.
    The run judges 75 % as the end of *week 1* ("this phase ends at 5%"), holds there, and the
    schedule then spends a whole week on "week 2" (25 %, 50 %) at 75 % before week 3 runs:
    weekly_phase_index is never brought in line with the stage reached."""
    env = env_with_ledger()
    killed_while_baking(env, 75, auto_approve("alice"), phased=False)
    env.clock.sleep(601)
    result = progressive_on(env, full_spec(), auto_approve("alice"), owner="run-2", phased=True)
    record = env.ledger.get(env.targets.canary_service)
    assert result.outcome == "promoted" or record.weekly_phase_index == 2, (
        f"{result.outcome} at {record.weights}: {result.reason[-40:]!r}, weekly phase {record.weekly_phase_index + 1}"
    )


def test_a_phase_that_ran_min_phase_seconds_is_advanced_by_the_next_schedule():
    """The minimum age does not hold back a phase that ran long enough: week 1 started on
    Thursday is ended by Monday's schedule, four days later."""
    env = env_with_ledger()
    env.clock.t = _utc(2027, 1, 14, 9, 0)  # a Thursday
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.t = _utc(2027, 1, 18, 9, 0)
    assert advance_on(env, auto_approve("carol"), "cron-1").outcome == "holding"
    assert shifts(env) == [5, 25, 50]


def test_a_phased_run_that_adopted_weights_past_its_held_phase_and_died_is_resumed_by_the_watchdog():
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    service = env.targets.canary_service
    assert env.ledger.get(service).phase is RolloutPhase.PAUSED
    # During the hold a person moves the weights to 25 % by hand and runs the rollout phased,
    # adopting the live weights: catch_up_phase records week 2 as the phase it is in.
    env.router.weights = Weights.canary_at(25)
    killed_while_baking(env, 25, auto_approve("alice"), owner="run-2", phased=True, adopt=True)
    record = env.ledger.get(service)
    assert (record.weekly_phase_index, record.weekly_phase_passed, record.stage_index) == (1, False, 1)
    # The run driving week 2 is dead: the watchdog resumes a dead phase's run (as for any
    # PROGRESSING record). Here the record still reads PAUSED (a held phase), so it is skipped now
    # ("this week's phase already started") and refused next week (PhaseRefused), forever.
    env.clock.sleep(601)
    result = watchdog(env, auto_approve("carol"), "cron-1", lambda owner: True)
    record = env.ledger.get(service)
    assert result is not None, f"watchdog did nothing; record {record.phase.value}, passed={record.weekly_phase_passed}"
    assert result.outcome == "holding" and env.router.weights == Weights.canary_at(50)


def test_a_dead_unphased_run_recorded_before_the_upgrade_is_still_resumed():
    env = env_with_ledger()
    service = env.targets.canary_service
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    killed_while_baking(env, 50, auto_approve("alice"), owner="run-2", phased=False)
    # As 8ab958c's record_mode left it: phase progressing, phased=False, weekly_phase_passed still True.
    now = env.clock.now()
    env.ledger.record(service, owner=None, now=now, transition=Transition(at=now, kind="note", actor="upgrade-sim"),
                      weekly_phase_passed=True)
    record = env.ledger.get(service)
    assert (record.phase, record.phased, record.weekly_phase_passed) == (RolloutPhase.PROGRESSING, False, True)
    outcomes = []
    for i in range(3):
        env.clock.sleep(WEEK)
        outcomes.append(watchdog(env, auto_approve("carol"), f"cron-{i}", lambda owner: True))
    assert any(o is not None for o in outcomes), "the watchdog never resumes the dead unphased run (canary left at 50%)"


def test_a_phased_run_given_an_edited_spec_at_a_completed_phase_says_the_edit_is_not_followed(caplog):
    """Week 1 holds at 5 %. Between weeks alice edits the spec (no approval before 100 %, a
    longer minimum per phase) and starts progressive_rollout again, phased, as she would to take
    it up. The run finds week 1 complete and changes nothing, as it should; but it said nothing of
    her edit, which the recorded spec overrides: she believed week 2 and 3 would follow it."""
    env = env_with_ledger()
    spec = full_spec()
    assert progressive_on(env, spec, auto_approve("alice"), phased=True).outcome == "holding"
    with caplog.at_level("WARNING"):
        assert progressive_on(env, spec, auto_approve("alice"), owner="run-2", phased=True).outcome == "holding"
    assert not [r for r in caplog.records if "the recorded spec governs" in r.getMessage()]  # the same spec: no word
    edited = spec.model_copy(update={
        "stages": tuple(s.model_copy(update={"approval": False}) if s.weight == 100 else s for s in spec.stages),
        "min_phase_seconds": 5 * 86400.0,
    })
    with caplog.at_level("WARNING"):
        result = progressive_on(env, edited, auto_approve("alice"), owner="run-3", phased=True)
    assert result.outcome == "holding" and "already complete" in result.reason, result.reason
    said = [r.getMessage() for r in caplog.records if "the recorded spec governs" in r.getMessage()]
    assert said and "min_phase_seconds" in said[0] and "stages" in said[0], [r.getMessage() for r in caplog.records]


def _week_1_held_on_monday() -> tuple[Any, str, Any]:
    """A phased rollout that started on a Thursday and holds week 1, on the Monday its cron (and
    that cron's twin) is due to start week 2: the environment, the canary service, its ledger."""
    env = env_with_ledger()
    env.clock.t = _utc(2027, 1, 14, 9, 0)  # a Thursday
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.t = _utc(2027, 1, 18, 9, 0)  # the Monday cron, and its twin
    return env, env.targets.canary_service, env.ledger


def test_a_second_schedule_run_that_loses_the_race_for_the_next_phase_leaves_it_to_the_first(caplog):
    """Two advance_phase runs at once (the schedule's late runs caught up after a Prefect outage):
    both read week 1 complete and week 2 due; the first takes the rollout and starts week 2 as
    this one is about to. This one failed on the ledger's bare LockHeld (a red run, its rollback
    hook judging whether to roll back); it now says what happened and changes nothing."""
    env, service, real = _week_1_held_on_monday()

    def first_run_takes_it(name, args, kwargs):
        if name == "acquire" and kwargs.get("owner") == "cron-2":
            real.acquire(service, owner="cron-1", now=env.clock.now(), lease_seconds=600.0, wall=env.wall())

    env.ledger = Intercept(real, first_run_takes_it)
    result = watchdog(env, auto_approve("carol"), "cron-2", lambda owner: owner != "cron-1")
    record = real.get(service)
    assert result is None
    assert record.owner == "cron-1" and record.weekly_phase_index == 0 and shifts(env) == [5]
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "cron-1 took the rollout as this run was about to start week 2" in said, said
    assert "nothing was changed" in said, said


def test_a_schedule_run_whose_twin_took_the_rollout_and_let_it_go_since_is_refused_not_failed_on_the_lock():
    """The twin took the rollout as this run was about to start week 2, then let it go (refused on
    drift, say) before this run read who held it. This run failed on the ledger's bare LockHeld, and
    with nobody holding the rollout its rollback hook rolled back a rollout neither run had moved."""
    env, service, real = _week_1_held_on_monday()
    twin: list[str] = []

    def first_run_takes_it_and_lets_go(name, args, kwargs):
        if name == "acquire" and kwargs.get("owner") == "cron-2":
            real.acquire(service, owner="cron-1", now=env.clock.now(), lease_seconds=600.0, wall=env.wall())
            twin.append("holds")
        elif name == "get" and twin == ["holds"]:
            real.release(service, owner="cron-1")
            twin.append("let go")

    env.ledger = Intercept(real, first_run_takes_it_and_lets_go)
    with pytest.raises(PhaseRefused) as refused:
        watchdog(env, auto_approve("carol"), "cron-2", lambda owner: owner != "cron-1")
    said = str(refused.value)
    assert twin == ["holds", "let go"]
    assert "was taken by another run as this run was about to start week 2" in said and "let go since" in said, said
    assert "'cron-1'" in said and "nothing was changed" in said and "run advance_phase again" in said, said
    record = real.get(service)
    assert record.owner is None and record.weekly_phase_index == 0 and shifts(env) == [5]


def test_a_schedule_run_decides_from_the_record_under_its_lease_not_from_one_another_run_moved_since(caplog):
    """Two advance_phase runs at once: both read week 1 complete and week 2 due. Between this run's read
    and its taking the lease, its twin took the rollout, started week 2, moved 5 % to 25 % and ended,
    letting the rollout go. Deciding from its own stale read, this run recorded the twin's shift again
    as one "found on the load balancer but not in the ledger" and wrote a second "starting week 2",
    restarting the week's clock. It decides from the record it holds: week 2 is under way, its run has
    ended, so it resumes week 2 where the twin left it."""
    env, service, real = _week_1_held_on_monday()
    twin: list[str] = []

    def twin_starts_week_2_and_ends(name, args, kwargs):
        if name != "acquire" or kwargs.get("owner") != "cron-2" or twin:
            return
        twin.append("ran")
        now = env.clock.now()
        real.acquire(service, owner="cron-1", now=now, lease_seconds=600.0, wall=env.wall())
        real.record(service, owner="cron-1", now=now, wall=env.wall(), weekly_phase_index=1,
                    weekly_phase_passed=False, weekly_phase_started_at=now, phase=RolloutPhase.PROGRESSING,
                    transition=Transition(at=now, kind="phase", actor="schedule", comment="starting week 2"))
        env.router.set_weights(Weights(stable=75, canary=25))
        real.record(service, owner="cron-1", now=now, wall=env.wall(), weights=Weights(stable=75, canary=25),
                    stage_index=1, stage_started_at=now, stage_passed=False,
                    # A person's name, as a script gave it: shown escaped where this run names who wrote.
                    # Its comment as the ledger keeps a person's words: escaped already, or as typed.
                    transition=Transition(at=now, kind="shift", actor="dana\n\u202eenoN",
                                          comment="by hand \\u202eenoN\nfor INC-7",
                                          from_weights=Weights(stable=95, canary=5),
                                          to_weights=Weights(stable=75, canary=25), to_stage=1))
        real.release(service, owner="cron-1")

    env.ledger = Intercept(real, twin_starts_week_2_and_ends)
    started_at = None
    with caplog.at_level("INFO"):
        result = watchdog(env, auto_approve("carol"), "cron-2", lambda owner: True)
        started_at = real.get(service).weekly_phase_started_at
    record = real.get(service)
    assert twin == ["ran"]
    starts = [t.comment for t in record.history if t.kind == "phase" and t.comment.startswith("starting week 2")]
    assert starts == ["starting week 2"], [(t.kind, t.actor, t.comment) for t in record.history]
    assert shifts(env) == [5, 25, 50], [(t.kind, t.actor, t.comment) for t in record.history]
    assert result is not None and result.outcome == "holding", result
    assert record.weekly_phase_index == 1 and record.weekly_phase_passed and started_at == _utc(2027, 1, 18, 9, 0)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "week 2 of" in said and "changed since this run read it" in said, said
    assert r"dana\n\u202eenoN, schedule wrote 2 entries since" in said and "\u202e" not in said, said
    # Shown once escaped: quoted with repr, the escape the ledger kept read "\\u202e".
    assert r"(the last: shift, 'by hand \u202eenoN\nfor INC-7')" in said, said
    # Let go by its run, the phase is held by nobody: said so, not "left unfinished by None".
    assert "was left unfinished and no run holds it: resuming it at 75/25" in said and "by None" not in said, said


def test_a_tick_that_recorded_a_dead_runs_passed_phase_returns_it_when_a_twin_took_the_next_phase_since(caplog):
    """The run of week 1 died after its last stage passed, before recording the phase complete. The
    Monday tick records it complete (its resume) and goes to start week 2, due; its twin started week 2
    and ran it through in the meantime, so the tick decides again and finds nothing left to do this week.
    The run returned None, as if it had done nothing: its flow run's result dropped the completion of
    week 1 that it recorded. It returns that result."""
    env = env_with_ledger()
    service, real = env.targets.canary_service, env.ledger
    env.ledger = Intercept(real, dies_recording_the_phase_complete([True]))
    env.clock.t = _utc(2027, 1, 11, 9, 0)  # a Monday
    with pytest.raises(Killed):
        first_run(env, full_spec())
    env.clock.t = _utc(2027, 1, 18, 9, 0)  # the next Monday's cron, and its twin
    twin: list[str] = []

    def twin_runs_week_2_through(name, args, kwargs):
        record = real.get(service)
        if name != "acquire" or kwargs.get("owner") != "cron-2" or twin or not record.weekly_phase_passed:
            return
        twin.append("ran")
        now = env.clock.now()
        real.acquire(service, owner="cron-1", now=now, lease_seconds=600.0, wall=env.wall())
        env.router.set_weights(Weights(stable=50, canary=50))
        real.record(service, owner="cron-1", now=now, wall=env.wall(), weekly_phase_index=1, weekly_phase_passed=True,
                    weekly_phase_started_at=now, phase=RolloutPhase.PAUSED, weights=Weights(stable=50, canary=50),
                    stage_index=2, stage_started_at=now, stage_passed=False,
                    transition=Transition(at=now, kind="phase", actor="schedule", comment="starting week 2"))
        real.release(service, owner="cron-1")

    env.ledger = Intercept(real, twin_runs_week_2_through)
    with caplog.at_level("INFO"):
        result = watchdog(env, auto_approve("carol"), "cron-2", lambda owner: True)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert twin == ["ran"] and "changed since this run read it" in said, said
    assert result is not None and result.outcome == "holding" and result.final_weights == Weights(stable=95, canary=5), (
        result)
    phases = [(t.actor, t.comment) for t in real.get(service).history if t.kind == "phase"]
    # The completion this tick recorded, once, and the twin's week 2 left as it was.
    assert phases == [("alice", "starting week 1"), ("schedule", "stage 5% passed; this phase ends at 5%"),
                      ("schedule", "starting week 2")], phases


def test_traffic_moved_by_hand_past_a_phase_whose_run_died_at_its_end_is_drift_not_the_next_phase():
    """Week 2's run passed its last stage (50 %) and died before recording the phase complete; a
    person then moved the load balancer to 75 % by hand. The Wednesday tick took 25/75 for a shift
    the dead run had made unrecorded, recorded it as the rollout's own, entered week 3 days before
    the calendar allowed and went on to 100 %: a phased run stops at its phase's end and never
    makes that shift. It is drift: refused, the traffic and the ledger left as they were."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    env.clock.sleep(WEEK)
    real, armed = env.ledger, [True]
    env.ledger = Intercept(real, dies_recording_the_phase_complete(armed))
    with pytest.raises(Killed):
        advance_on(env, auto_approve("carol"), "cron-2")
    env.ledger = real
    before = real.get(env.targets.canary_service)
    assert (before.weekly_phase_index, before.stage_passed, before.weekly_phase_passed, before.weights) == (
        1, True, False, Weights(stable=50, canary=50))
    env.clock.sleep(2 * 24 * 3600)  # Wednesday: the dead run's lease is long gone
    env.router.weights = Weights(stable=25, canary=75)
    with pytest.raises(DriftDetected, match=r"at 50/50 \(stable/canary\) but the load balancer holds 25/75"):
        watchdog(env, auto_approve("carol"), "cron-wed", lambda owner: True)
    after = real.get(env.targets.canary_service)
    assert env.router.weights == Weights(stable=25, canary=75) and shifts(env) == [5, 25, 50]
    assert (after.weekly_phase_index, after.phase) == (1, RolloutPhase.PROGRESSING), after
    assert not [t for t in after.history if t.at > before.history[-1].at and t.kind in ("shift", "phase")], after.history


def test_a_tick_that_finds_the_phase_held_by_a_run_prefect_shows_running_whose_lease_lapsed_days_ago_warns(caplog):
    """Week 2's machine was lost while 25 % baked; without Prefect's zombie-flow automation the run
    stays Running. Every Monday the tick logged only "driven by cron-1, whose run has not ended:
    nothing to do" at INFO, and the rollout sat at 25 % unjudged for the whole holiday. It now warns
    that no run has renewed the lease since it lapsed, and says what lets the schedule resume it."""
    from tests.flows.test_progressive_fakes import _phase_two_killed_while_25_percent_bakes

    env = _phase_two_killed_while_25_percent_bakes()
    env.clock.sleep(2 * 24 * 3600)
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-3", lambda owner: False) is None
    assert shifts(env) == [5, 25]
    said = [r for r in caplog.records if "cron-1" in r.getMessage() and "lapsed at" in r.getMessage()]
    assert said and said[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
    message = said[0].getMessage()
    assert re.search(r"lapsed at .*, 1 d 23 h \d+ min ago", message), message
    assert "nothing judges the canary" in message and "Crashed" in message and "rollway abort" in message, message


def test_a_tick_that_finds_the_phase_held_by_a_live_run_whose_lease_lapsed_moments_ago_does_not_call_it_hung(caplog):
    """A live run whose look ran long (a slow CloudWatch read, a shift waiting for ECS) renews its
    lease late: the tick that came a few minutes after the lapse warned that its process "may be
    hung, or its machine lost" and sent people to its worker. Within a lease and the lapse margin
    (as long as a tick waits for an ended run's lease) it is driven by that run; past it, hung."""
    from tests.flows.test_progressive_fakes import _phase_two_killed_while_25_percent_bakes

    env = _phase_two_killed_while_25_percent_bakes()
    expires = env.ledger.get(env.targets.canary_service).lease_expires
    env.clock.t += expires - env.wall() + 300  # lapsed five minutes ago: well within a 600 s lease
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-2", lambda owner: False) is None
    assert shifts(env) == [5, 25]
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "lapsed at" in m], said
    assert [m for m in said if "driven by cron-1, whose run has not ended" in m], said
    caplog.clear()
    env.clock.t += 600 + 60 + 1 - 300  # lapsed longer ago than a lease and the margin: hung
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-3", lambda owner: False) is None
    warned = [r for r in caplog.records if "cron-1" in r.getMessage() and "lapsed at" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]


def test_a_tick_that_finds_a_promoted_rollouts_window_held_by_a_run_prefect_shows_running_whose_lease_lapsed_warns(
        caplog):
    """The run watching the promoted version's monitoring window lost its machine; without
    Prefect's zombie-flow automation it stays Running. Every Monday the tick said only "was
    promoted: every phase has run, nothing to advance" at INFO: the window was never closed, the
    old service never decommissioned and nothing watched the new version, and nobody was told."""
    from tests.flows.test_progressive_fakes import _killed_while_monitoring

    env, _ = _killed_while_monitoring()
    before = env.ledger.get(env.targets.canary_service)
    env.clock.sleep(2 * 24 * 3600)
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-3", lambda owner: False) is None
    after = env.ledger.get(env.targets.canary_service)
    assert after.history == before.history and after.owner == "run-1", after.history[len(before.history):]
    assert env.deployer.services[env.targets.stable_service].desired > 0
    said = [r for r in caplog.records if "run-1" in r.getMessage() and "lapsed at" in r.getMessage()]
    assert said and said[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
    message = said[0].getMessage()
    assert re.search(r"lapsed at .*, 1 d 23 h \d+ min ago", message), message
    assert "nothing watches its monitoring window" in message and "Crashed" in message, message
    assert "rollway abort" in message and "nothing to advance" not in message, message
    assert not [r for r in caplog.records if "nothing to advance" in r.getMessage()], [r.getMessage() for r in caplog.records]


def test_a_tick_that_finds_a_windows_run_whose_lease_lapsed_moments_ago_leaves_it_to_that_run(caplog):
    """The run watching the monitoring window renews its lease at every look; one look that ran long
    renews it minutes late. Within a lease and the lapse margin the tick leaves the window to that
    run at INFO, not warning that nothing watches the window and sending people to abort it; past
    that, it warns."""
    from tests.flows.test_progressive_fakes import _killed_while_monitoring

    env, _ = _killed_while_monitoring()
    before = env.ledger.get(env.targets.canary_service)
    env.clock.t += before.lease_expires - env.wall() + 300  # lapsed five minutes ago: within a 600 s lease
    caplog.clear()  # the killed run's own lines
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-2", lambda owner: False) is None
    after = env.ledger.get(env.targets.canary_service)
    assert after.history == before.history and after.owner == "run-1", after.history[len(before.history):]
    said = [r for r in caplog.records if "watched by run-1, whose run has not ended" in r.getMessage()]
    assert said and said[0].levelno == logging.INFO, [r.getMessage() for r in caplog.records]
    # What is known, not why: nothing says the run's look ran long.
    assert re.search(r"its lease lapsed at .*, 5 min ago, within its lease and the lapse margin \(11 min\)",
                     said[0].getMessage()), said[0].getMessage()
    assert "look running long" not in said[0].getMessage(), said[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
    caplog.clear()
    env.clock.t += 600 + 60 + 1 - 300  # lapsed longer ago than a lease and the margin: nothing watches it
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-3", lambda owner: False) is None
    warned = [r for r in caplog.records if "nothing watches its monitoring window" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]


def test_a_tick_judges_a_holder_hung_by_the_lease_the_holder_took_not_by_its_own(caplog):
    """The run holding the phase renews an hour's lease (its deployment's lease_seconds); the tick's own
    is 10 minutes. Twelve minutes after that hour's lease lapsed, the tick warned that the run "may be
    hung, or its machine lost", judging a grace of its own lease and the margin: a run renewing
    hourly leases had not had the time its own lease gives it. The holder's recorded lease is the one."""
    from tests.flows.test_progressive_fakes import _phase_two_killed_while_25_percent_bakes

    env = _phase_two_killed_while_25_percent_bakes()
    service = env.targets.canary_service
    # cron-1's last renewal, of the hour's lease its deployment takes.
    env.ledger.acquire(service, owner="cron-1", now=env.clock.now(), lease_seconds=3600.0, wall=env.wall())
    expires = env.ledger.get(service).lease_expires
    env.clock.t += expires - env.wall() + 720  # lapsed 12 minutes ago: past the tick's 600 s and the margin
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-2", lambda owner: False) is None
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if "lapsed at" in m], said
    assert [m for m in said if "driven by cron-1, whose run has not ended" in m], said
    warned_hung_past_its_hour(env, caplog, watchdog, "cron-1")


def warned_hung_past_its_hour(env, caplog, tick, holder: str) -> None:
    """Once ``holder``'s hour's lease, lapsed 12 minutes ago, has lapsed longer ago than itself and the
    margin, ``tick`` warns that its run may be hung."""
    caplog.clear()
    env.clock.t += 3600 + 60 + 1 - 720
    with caplog.at_level(logging.INFO):
        assert tick(env, auto_approve("carol"), "cron-3", lambda owner: False) is None
    warned = [r for r in caplog.records if holder in r.getMessage() and "may be hung" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]


@flow
def hourly_tick(env, approver, owner, finished):
    return advance(env, approver, owner=owner, owner_finished=finished, lease_seconds=3600.0)


def older_worker_renewed_an_hour():
    """cron-1 takes the phase under 10 minutes' lease; then, during an upgrade, old-1, a worker of the
    version before the ledger recorded lease lengths, takes it over and renews an hour's lease, as that
    version writes it: the owner, the lease's end an hour on and the time of the write; the length
    stays cron-1's. Returns the environment with that lease lapsed 12 minutes ago."""
    from tests.flows.test_progressive_fakes import _phase_two_killed_while_25_percent_bakes

    env = _phase_two_killed_while_25_percent_bakes()
    service = env.targets.canary_service
    env.ledger.acquire(service, owner="cron-1", now=env.clock.now(), lease_seconds=600.0, wall=env.wall())
    rollouts = env.ledger._rollouts[service]
    rollouts[-1] = rollouts[-1].model_copy(update={"owner": "old-1", "lease_expires": env.wall() + 3600.0,
                                                   "updated_at": env.clock.now()})
    assert rollouts[-1].lease_seconds == 600.0
    env.clock.t += rollouts[-1].lease_expires - env.wall() + 720
    return env


@pytest.mark.parametrize("tick", [hourly_tick, watchdog], ids=["hourly-tick", "10-minute-tick"])
def test_a_holder_whose_older_worker_renewed_a_lease_the_record_does_not_measure_is_not_judged_hung_early(
        caplog, tick):
    """The record keeps the 10 minutes the newer run before the older worker took. A tick judged the
    old worker by those 10 minutes and warned it "may be hung" 12 minutes after its hour's lease
    lapsed, sooner than any tick before the upgrade would: an hourly tick, whose own lease the
    recorded length is never taken for shorter than; and, after that, a tick of the default 10
    minutes, both lengths 10 minutes: the older worker's last write, its lease's end an hour on
    from it, says the lease it took was an hour long."""
    env = older_worker_renewed_an_hour()
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert tick(env, auto_approve("carol"), "cron-2", lambda owner: False) is None
    said = [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], said
    assert [m for m in said if "driven by old-1, whose run has not ended" in m], said
    warned_hung_past_its_hour(env, caplog, tick, "old-1")


def test_a_holder_whose_write_time_runs_behind_the_wall_clock_is_not_given_that_gap_as_its_lease(caplog):
    """cron-1's run took the phase on a sped-up rollout clock anchored a day ahead of the wall clock,
    which starts 59 days behind it: its write's time, on that clock, is two months before its lease's
    end, on the wall clock. Taken for the lease it took, that span let the run, hung, go unwarned for
    two months; longer than any lease a run may take, it is no lease's, and its 10 minutes are."""
    from tests.flows.test_progressive_fakes import _phase_two_killed_while_25_percent_bakes

    env = _phase_two_killed_while_25_percent_bakes()
    service = env.targets.canary_service
    env.ledger.acquire(service, owner="cron-1", now=env.clock.now() - 59 * 86_400, lease_seconds=600.0,
                       wall=env.wall())
    env.clock.t += env.ledger.get(service).lease_expires - env.wall() + 600 + 60 + 1
    with caplog.at_level(logging.INFO):
        assert watchdog(env, auto_approve("carol"), "cron-2", lambda owner: False) is None
    warned = [r for r in caplog.records if "cron-1" in r.getMessage() and "may be hung" in r.getMessage()]
    assert warned and warned[0].levelno == logging.WARNING, [r.getMessage() for r in caplog.records]
