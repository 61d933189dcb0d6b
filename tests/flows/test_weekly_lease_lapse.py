"""A run killed less than a lease before the Monday cron costs no week.

Week 2 (25 % after an approval, then 50 %) starts on a Monday at 00:05 (the cron); alice answers
its approval on Sunday at 23:55, in the phase's own week; the stages pass by 00:01 and the run dies
before the phase is recorded complete (or before its lease is released). Its lease, renewed at the
last stage, runs until about 00:11. The 00:05 cron found that lease running: it refused ("phase 2 has
not passed", or the ledger's LockHeld), and week 3 started a week late. The tick now waits the
lease out, bounded, when Prefect says the holder's run has ended, and then goes on.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging

import pytest
from prefect import flow, get_client
from prefect.states import Running

from flows.env import owner_finished, owner_run_id, run_owner
from flows.progressive import PhaseRefused, advance, run_progressive
from rollway import lapse, weekly
from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.phases import RolloutPhase
from tests.flows.test_progressive_fakes import Intercept, Killed, env_with_ledger, full_spec, shifts

H = 3600
WEEK = 7 * 24 * H


def _utc(*parts) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


# A cron just after midnight: alice's late answer still falls in week 2's own calendar week (an answer
# in the next week holds the phase at its last weight until the week after: rollway/weekly.py).
MONDAY_1, MONDAY_2, MONDAY_3 = _utc(2027, 1, 11, 0, 5), _utc(2027, 1, 18, 0, 5), _utc(2027, 1, 25, 0, 5)


@flow
def week_1(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner="run-1", actor="alice", phased=True)


@flow
def tick(env, owner=None, finished=None):
    kwargs = {"owner_finished": finished} if finished is not None else {}
    return advance(env, auto_approve("carol"), owner=owner or run_owner(), **kwargs)


@flow
def week_2_answered_late(env, finished=None):
    """The Monday-2 cron's run, driving week 2 as its own flow run; alice answers its approval
    on the Sunday before Monday 3's cron, at 23:55."""

    def alice(pause, summary):
        env.clock.t = MONDAY_3 - 10 * 60
        return ApprovalAnswer(action="approve", approver="alice", comment="go")

    kwargs = {"owner_finished": finished} if finished is not None else {}
    return advance(env, alice, owner=run_owner(), **kwargs)


def dies_at(kill: str, armed: list[bool]):
    """The process dies recording week 2 complete, or right after, releasing its lease."""

    def hook(name, args, kwargs):
        if not armed:
            return
        if (kill == "record" and name == "record" and kwargs.get("weekly_phase_passed") is True) \
                or (kill == "release" and name == "release"):
            armed.clear()
            raise Killed(f"the node is lost at week 2's end ({kill})")

    return hook


def _killed_just_before_monday_3(kill: str):
    env = env_with_ledger()
    real, armed = env.ledger, []
    env.ledger = Intercept(real, dies_at(kill, armed))
    env.clock.t = MONDAY_1
    assert week_1(env, full_spec()).outcome == "holding"
    env.clock.t = MONDAY_2
    armed.append(True)
    with pytest.raises(Killed):
        week_2_answered_late(env, finished=lambda owner: True)
    assert not armed, "the week-2 run died at its end"
    record = real.get(env.targets.canary_service)
    assert record.weekly_phase_index == 1 and record.stage_passed and shifts(env) == [5, 25, 50]
    assert MONDAY_3 - 10 * 60 < env.clock.now() < MONDAY_3 < record.lease_expires, "a lease running past the cron"
    env.ledger = real
    env.clock.t = MONDAY_3
    return env, record


@pytest.mark.parametrize("kill", ["record", "release"])
def test_a_kill_less_than_a_lease_before_the_cron_costs_no_week(kill, caplog):
    env, dead = _killed_just_before_monday_3(kill)
    with caplog.at_level(logging.INFO):
        tick(env, "cron-3", finished=lambda owner: True)
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 2 and shifts(env) == [5, 25, 50, 75, 100], (
        f"kill at {kill}: after Monday 3's cron the rollout is in weekly phase {record.weekly_phase_index + 1} "
        f"({record.phase.value}), shifts {shifts(env)}")
    # It waited for the lease, no longer than the lease had left.
    started = [t.at for t in record.history if t.kind == "phase" and t.comment.startswith("starting")]
    assert dead.lease_expires < started[-1] <= dead.lease_expires + 2, (started[-1] - MONDAY_3)
    said = [r.getMessage() for r in caplog.records if "whose run has ended" in r.getMessage()]
    assert said and "waiting about" in said[0], caplog.text


def test_the_tick_asks_prefect_whether_the_holders_run_ended():
    """The week-2 run is a real flow run on the Prefect harness, killed at its end: Prefect
    records it CRASHED, and the tick, asking Prefect, waits for its lease and starts week 3."""
    env, dead = _killed_just_before_monday_3("record")
    with get_client(sync_client=True) as client:
        state = client.read_flow_run(owner_run_id(dead.owner)).state
    assert state.is_crashed(), state
    tick(env, finished=owner_finished)
    record = env.ledger.get(env.targets.canary_service)
    assert record.weekly_phase_index == 2 and shifts(env) == [5, 25, 50, 75, 100], (
        f"weekly phase {record.weekly_phase_index + 1} ({record.phase.value}), shifts {shifts(env)}")


def held_by_a_running_run(some_flow):
    """The record week 2's run left when killed, held now by a run of ``some_flow`` that Prefect
    says is running, under a lease running past the cron: (env, service, that run's owner)."""
    env, dead = _killed_just_before_monday_3("record")
    with get_client(sync_client=True) as client:
        alive = client.create_flow_run(flow=some_flow, state=Running())
    service, live_owner = env.targets.canary_service, f"flow-run/{alive.id}"
    env.ledger.acquire(service, owner=live_owner, now=dead.lease_expires + 1, lease_seconds=600)
    return env, service, live_owner


def test_a_holder_whose_run_prefect_says_is_running_is_left_alone_without_waiting():
    env, service, live_owner = held_by_a_running_run(tick)
    before = env.clock.now()
    assert tick(env, finished=owner_finished) is None
    record = env.ledger.get(service)
    assert env.clock.now() == before, "the tick waited for a live run's lease"
    assert record.owner == live_owner and record.weekly_phase_index == 1 and shifts(env) == [5, 25, 50]


def leased_three_hours_past_the_cron(kill: str = "release"):
    """The record week 2's run left when killed, its lease running three hours past the Monday cron."""
    env, dead = _killed_just_before_monday_3(kill)
    service = env.targets.canary_service
    env.ledger._rollouts[service][-1] = env.ledger._rollouts[service][-1].model_copy(
        update={"lease_expires": MONDAY_3 + 3 * H})
    return env, dead


def test_a_lease_longer_than_the_tick_waits_is_refused_saying_until_when():
    env, dead = leased_three_hours_past_the_cron()
    service = env.targets.canary_service
    with pytest.raises(PhaseRefused, match=r"until Mon 2027-01-25 03:05 UTC[\s\S]*run advance_phase again"):
        tick(env, "cron-3", finished=lambda owner: True)
    assert env.clock.now() == MONDAY_3 and shifts(env) == [5, 25, 50]
    assert env.ledger.get(service).owner == dead.owner


def renewing_while_waiting(env, dead) -> None:
    """The holder ``dead`` is alive after all: each time the waiting run sleeps, it renews its lease
    (for the first ten minutes past its old expiry)."""
    service = env.targets.canary_service
    real_sleep = env.clock.sleep

    def sleep(seconds):
        real_sleep(seconds)
        if env.ledger.get(service).owner == dead.owner and env.clock.now() < dead.lease_expires + 600:
            env.ledger.acquire(service, owner=dead.owner, now=env.clock.now(), lease_seconds=600)

    env.clock.sleep = sleep


@pytest.mark.parametrize("kill", ["record", "release"])
def test_a_holder_that_renews_while_the_tick_waits_keeps_the_rollout(kill, caplog):
    """Prefect said the run ended, but it renews its lease: it is alive, and the tick stops waiting
    and says who holds the rollout until when. Killed before the phase was recorded complete, the
    tick used to say "phase 2 has not passed; approve or roll it back first", which sent people to
    act on a rollout another run was driving."""
    env, dead = _killed_just_before_monday_3(kill)
    service = env.targets.canary_service
    renewing_while_waiting(env, dead)
    with caplog.at_level(logging.WARNING), pytest.raises(PhaseRefused) as refused:
        tick(env, "cron-3", finished=lambda owner: True)
    renewed = env.ledger.get(service).lease_expires
    assert f"held by {dead.owner}" in str(refused.value) and "renewed" in str(refused.value), refused.value
    assert f"until {weekly.describe(renewed, 'UTC')}" in str(refused.value), refused.value
    assert "has not passed" not in str(refused.value), refused.value
    assert env.ledger.get(service).owner == dead.owner and shifts(env) == [5, 25, 50]
    assert env.clock.now() < dead.lease_expires, "it stopped waiting at the first renewal"
    assert any("lease changed while this run waited" in r.getMessage() for r in caplog.records), caplog.text


@functools.cache
def _a_dead_runs_record():
    return _killed_just_before_monday_3("release")[1]


@pytest.mark.parametrize("phase,passed,phased,due,needs", [
    (RolloutPhase.PROGRESSING, False, True, False, True),  # a phase left unfinished: resumed whenever
    (RolloutPhase.PENDING, False, True, False, True),  # a first run that died before its phase
    (RolloutPhase.PROGRESSING, True, False, False, True),  # an unphased run
    (RolloutPhase.PAUSED, True, True, True, True),  # a held phase whose next one is due
    (RolloutPhase.PAUSED, True, True, False, False),  # ... and one whose next one is not
    (RolloutPhase.ROLLED_BACK, False, True, True, False),
])
def test_the_tick_needs_the_lease_when_it_would_act(phase, passed, phased, due, needs):
    record = _a_dead_runs_record().model_copy(update={"phase": phase, "weekly_phase_passed": passed, "phased": phased})
    now = MONDAY_3 if due else MONDAY_3 - 2 * 24 * H
    assert lapse.tick_needs_the_lease(full_spec(), record, now) is needs


@pytest.mark.parametrize("expires,now,max_wait,wait", [
    (100.0, 101.0, 600.0, 0.0),  # run out already
    (100.0, 100.0, 600.0, 1.0),  # expires now: taken a second after
    (700.0, 100.0, 600.0, 601.0),
    (760.0, 100.0, 660.0, 661.0),
    (800.0, 100.0, 660.0, None),  # longer than the tick waits
])
def test_how_long_the_tick_waits_for_a_lease(expires, now, max_wait, wait):
    assert lapse.lapse_wait(expires, now, max_wait=max_wait) == wait
