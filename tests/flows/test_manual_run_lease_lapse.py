"""A run started by hand meets the lease of a run that has ended: it waits it out, as the tick does.

The week-2 run died at its end on Monday 3 at 08:56, its lease (renewed at the last stage) running
until about 09:06. Prefect records that run crashed. A person who starts ``progressive_rollout``
by hand at 09:00 to carry the rollout on used to get LockHeld at once, and had to work out when the
lease ran out and try again. The run now waits the lease out, bounded, saying so each minute, and
resumes; a holder whose run Prefect says is running is still refused at once.
"""

from __future__ import annotations

import logging

import pytest
from prefect import flow, get_client

from flows.env import owner_finished, owner_run_id, run_owner
from flows.progressive import run_progressive
from rollway import lapse
from rollway.approvals import auto_approve
from rollway.ledger import LockHeld, RolloutInProgress, Transition
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec
from tests.flows.test_progressive_fakes import IMAGE, full_spec, monitored_spec, shifts
from tests.flows.test_weekly_lease_lapse import (MONDAY_3, _a_dead_runs_record, _killed_just_before_monday_3,
                                                held_by_a_running_run, leased_three_hours_past_the_cron,
                                                renewing_while_waiting)


@flow
def by_hand(env, finished=None, spec=None):
    kwargs = {"owner_finished": finished} if finished is not None else {}
    return run_progressive(env, spec or full_spec(), auto_approve("dave"), owner=run_owner(), actor="dave",
                           phased=True, **kwargs)


def _ended(owner):
    return True


def test_a_run_by_hand_waits_out_an_ended_runs_lease_and_resumes(caplog):
    kill = "record"  # the phase's last stage passed, not the phase itself: the run resumes to record it
    env, dead = _killed_just_before_monday_3(kill)
    with caplog.at_level(logging.INFO):
        result = by_hand(env, finished=_ended)
    record = env.ledger.get(env.targets.canary_service)
    assert result.outcome == "holding" and record.weekly_phase_passed and shifts(env) == [5, 25, 50], (
        f"kill at {kill}: {result.outcome}, {record.phase.value}, shifts {shifts(env)}")
    assert record.owner is None, "the resumed run released its lease"
    # It waited for the lease, no longer than the lease had left, and then took it.
    took = [t.at for t in record.history if t.actor == "dave"] or [env.clock.now()]
    assert dead.lease_expires < env.clock.now() and took[0] <= dead.lease_expires + 2
    said = [r.getMessage() for r in caplog.records]
    assert any("whose run has ended" in m and "waiting about" in m for m in said), caplog.text
    # About six minutes: a line each minute, so the person sees it is waiting, not stuck.
    assert sum("to lapse: about" in m for m in said) >= 4, caplog.text


def test_a_phased_run_by_hand_at_a_phase_recorded_complete_does_not_wait_for_the_lease():
    """The dead run recorded its phase complete and died before giving its lease back: a phased run
    has nothing to do there, and says so at once rather than after waiting the lease out."""
    env, dead = _killed_just_before_monday_3("release")
    result = by_hand(env, finished=_ended)
    assert result.outcome == "holding" and "already complete" in result.reason, result.reason
    assert env.clock.now() == MONDAY_3 and env.ledger.get(env.targets.canary_service) == dead


def test_a_run_by_hand_asks_prefect_whether_the_holders_run_ended():
    """The week-2 run is a real flow run on the Prefect harness, killed at its end: Prefect records
    it CRASHED, and the run by hand, asking Prefect, waits for its lease and resumes."""
    env, dead = _killed_just_before_monday_3("record")
    with get_client(sync_client=True) as client:
        assert client.read_flow_run(owner_run_id(dead.owner)).state.is_crashed()
    result = by_hand(env, finished=owner_finished)
    record = env.ledger.get(env.targets.canary_service)
    assert result.outcome == "holding" and record.weekly_phase_passed and shifts(env) == [5, 25, 50]
    assert env.clock.now() > dead.lease_expires


def test_a_run_by_hand_is_refused_at_once_by_a_holder_prefect_says_is_running():
    env, service, live_owner = held_by_a_running_run(by_hand)
    before = env.clock.now()
    with pytest.raises(RolloutInProgress, match="whose run has not ended"):
        by_hand(env, finished=owner_finished)
    assert env.clock.now() == before, "it waited for a live run's lease"
    assert env.ledger.get(service).owner == live_owner and shifts(env) == [5, 25, 50]


def test_a_run_by_hand_that_cannot_ask_prefect_about_the_holder_refuses_and_is_left_alone(monkeypatch):
    """The Prefect API failed past its client's retries while the run asked whether the holder's
    run had ended: the run failed with the API's own error, and its hook rolled back the rollout
    the holder may still be driving."""
    import httpx
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.states import Failed

    from flows.hooks import leave_alone

    env, service, live_owner = held_by_a_running_run(by_hand)
    real = SyncPrefectClient.read_flow_run

    def outage(self, run_id):
        if f"flow-run/{run_id}" == live_owner:
            raise httpx.ConnectError("connection refused")
        return real(self, run_id)

    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", outage)
    with pytest.raises(RolloutInProgress, match=r"could not ask the Prefect API .* Nothing was changed") as refused:
        by_hand(env, finished=owner_finished)
    assert env.ledger.get(service).owner == live_owner and shifts(env) == [5, 25, 50]
    assert leave_alone(Failed(data=refused.value), {}) is not None, "the hook would roll back the holder's rollout"


def test_a_holder_that_renews_while_a_run_by_hand_waits_keeps_the_rollout():
    """Prefect said the run ended, but it renews its lease: it is alive; the run by hand stops
    waiting and fails with LockHeld, saying so."""
    env, dead = _killed_just_before_monday_3("record")
    service = env.targets.canary_service
    renewing_while_waiting(env, dead)
    with pytest.raises(LockHeld, match=r"renewed its lease[\s\S]*while this run waited[\s\S]*Nothing was changed"):
        by_hand(env, finished=_ended)
    record = env.ledger.get(service)
    assert record.owner == dead.owner and shifts(env) == [5, 25, 50]
    assert env.clock.now() < dead.lease_expires, "it stopped waiting at the first renewal"


def test_a_lease_longer_than_a_run_by_hand_waits_is_refused_saying_until_when():
    env, dead = leased_three_hours_past_the_cron("record")
    service = env.targets.canary_service
    with pytest.raises(LockHeld, match=r"until Mon 2027-01-25 03:05 UTC[\s\S]*run progressive_rollout again"):
        by_hand(env, finished=_ended)
    assert env.clock.now() == MONDAY_3 and shifts(env) == [5, 25, 50]
    assert env.ledger.get(service).owner == dead.owner


def _record(**update):
    return _a_dead_runs_record().model_copy(update=update)


@pytest.mark.parametrize("update,image,needs", [
    ({}, IMAGE, True),  # a phase left unfinished: resumed
    ({"phase": RolloutPhase.PAUSED}, IMAGE, True),  # a held phase: an unphased run takes it over
    ({}, "webordinary/edit-container:3.0.0", False),  # another image's rollout: refused anyway
    ({"phase": RolloutPhase.ROLLING_BACK}, IMAGE, False),  # finished under the rollback's claim
    ({"phase": RolloutPhase.ROLLED_BACK}, IMAGE, False),
    ({"phase": RolloutPhase.PROMOTED}, IMAGE, False),  # no window owed: nothing to do
])
def test_a_run_by_hand_needs_the_lease_when_it_would_take_the_rollout_over(update, image, needs):
    record = _record(**update)
    assert lapse.run_needs_the_lease(image, full_spec(), record, MONDAY_3) is needs


def test_a_phased_run_by_hand_does_not_need_the_lease_of_a_completed_phase():
    record = _record(phase=RolloutPhase.PAUSED, weekly_phase_passed=True)
    assert not lapse.run_needs_the_lease(IMAGE, full_spec(), record, MONDAY_3, phased=True)
    unfinished = _record(phase=RolloutPhase.PROGRESSING, weekly_phase_passed=False)
    assert lapse.run_needs_the_lease(IMAGE, full_spec(), unfinished, MONDAY_3, phased=True)


def test_a_run_by_hand_does_not_need_the_lease_to_carry_out_a_rejection():
    record = _record()
    reject = Transition(at=MONDAY_3, kind="reject", actor="bob", comment="no")
    record = record.model_copy(update={"history": record.history + (reject,)})
    assert not lapse.run_needs_the_lease(IMAGE, full_spec(), record, MONDAY_3)


def test_a_run_by_hand_needs_the_lease_to_finish_a_monitoring_window():
    spec = monitored_spec()
    promote = Transition(at=MONDAY_3, kind="promote", actor="dave", comment="promoted")
    record = _record(phase=RolloutPhase.PROMOTED)
    record = record.model_copy(update={"history": record.history + (promote,)})
    assert lapse.run_needs_the_lease(IMAGE, spec, record, MONDAY_3)
    assert not lapse.run_needs_the_lease(IMAGE, RolloutSpec(image=IMAGE, monitor_seconds=0), record, MONDAY_3)
