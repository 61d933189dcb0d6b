"""Claims (and owner leases) are stamped on the wall clock, not on the rollout clock.

In `make up`'s demo the runs' rollout clock runs 60x, anchored when their process started, while
`rollway abort` and the hooks read the wall or a clock anchored elsewhere. Claims used to be
stamped and judged on each process's own rollout clock, so a process on a faster clock saw a live
claim as long lapsed (and took it over: two rollbacks, two pages), and a process on a slower one
saw a dead holder's claim as live for hours. Now every process stamps and judges them on
``Environment.wall``.
"""
from __future__ import annotations

import time

import pytest
from prefect import flow

from flows.journal import LedgerJournal
from flows.rollback import wait_for_claim
from rollway.clock import ScaledClock, SystemClock
from rollway.fakes import FakeLedger
from rollway.ledger import LockHeld, RollbackClaimed, RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import fake_environment
from tests.flows.test_rollback_claim import SPEC

RUN = "judge (flow run fast-falcon, 1a2b...)"
ABORT = "erin (process 4242 on laptop)"


def on(ledger, clock, wall=time.time):
    """An Environment on ``clock`` (its rollout clock) and ``wall``, sharing ``ledger``."""
    env = fake_environment()
    env.ledger, env.clock, env.wall = ledger, clock, wall
    return env


def a_rollout(ledger, env) -> RolloutRecord:
    record = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(time.time() - 100),
                           image=SPEC.image, spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                           stage_index=0, weights=Weights.canary_at(5), stable_desired=4)
    return ledger.create(record, owner="run-1", now=env.clock.now(), lease_seconds=600, wall=env.wall())


@flow
def holder_then_other(holder_env, other_env, rollout: str) -> str:
    """The holder's run begins its rollback (the journal takes the claim, as a judge's rollback
    does); then the other process looks at the claim: 'held' or 'lapsed'."""
    journal = LedgerJournal(holder_env, SPEC, owner="run-1", lease_seconds=600, actor="judge", rollout_id=rollout)
    assert journal.rolling_back("errors over the threshold", "judge") is None
    try:
        held = RollbackClaimed("held", holder=RUN, expires=0.0)
        try:
            ended = wait_for_claim(other_env, held, holder=ABORT, rollout=rollout, wait_seconds=0)
        except RollbackClaimed:
            return "held"
        assert ended is None
        return "lapsed"
    finally:
        journal.rollback_failed(RuntimeError("test over"))  # stops the renewals (and gives the claim up)


def test_a_live_claim_taken_on_wall_time_is_held_for_a_run_on_a_60x_clock():
    """`rollway abort` (wall time) holds the claim; a run on the demo's 60x clock, anchored an
    hour ago (59 h ahead of the wall), must see it held: it used to see it lapsed for hours."""
    ledger = FakeLedger()
    wall_env = on(ledger, SystemClock())
    fast_env = on(ledger, ScaledClock(speed=60, anchor=time.time() - 3600))
    rollout = a_rollout(ledger, wall_env).rollout_id

    assert holder_then_other(wall_env, fast_env, rollout) == "held"


def test_a_dead_holders_claim_on_a_60x_clock_lapses_after_a_minute_of_wall_time():
    """A run on a 60x clock (anchored elsewhere) took the claim 61 wall seconds ago and died: a
    process on another clock (10x, anchored a minute ago) takes it over. It used to see the
    claim live for hours (stamped 59 h ahead on the fast clock, its lease 60 x 60 s)."""
    ledger = FakeLedger()
    died = on(ledger, ScaledClock(speed=60, anchor=time.time() - 3600), wall=lambda: time.time() - 61)
    other = on(ledger, ScaledClock(speed=10, anchor=time.time() - 60))
    rollout = a_rollout(ledger, other).rollout_id

    assert holder_then_other(died, other, rollout) == "lapsed"


def test_an_owner_lease_renewed_on_wall_time_is_held_for_a_run_on_a_60x_clock():
    """The owner's lease is on the wall too: a run on the demo's 60x clock (59 h ahead of the
    wall) used to find a live run's lease long expired and take the rollout over."""
    from flows.progressive import _abandoned

    ledger = FakeLedger()
    wall_env = on(ledger, SystemClock())
    fast_env = on(ledger, ScaledClock(speed=60, anchor=time.time() - 3600))
    rollout = a_rollout(ledger, wall_env).rollout_id
    LedgerJournal(wall_env, SPEC, owner="run-1", lease_seconds=600, actor="judge", rollout_id=rollout).tick(None, None)

    with pytest.raises(LockHeld, match="owned by 'run-1'"):
        LedgerJournal(fast_env, SPEC, owner="run-2", lease_seconds=600, actor="judge", rollout_id=rollout).tick(None, None)
    record = ledger.get(wall_env.targets.canary_service)
    assert record.owner == "run-1" and not _abandoned(record, fast_env.wall(), lambda owner: True)
    # Everything else stays on each run's rollout clock: the record's bookkeeping is run-1's.
    assert abs(record.updated_at - wall_env.clock.now()) < 5
