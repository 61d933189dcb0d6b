"""A pause's look finds the traffic moved because someone else began the rollout's rollback (a
`rollway abort` run by hand, say): the run stops without moving traffic, and its log says so."""

from __future__ import annotations

import logging

import pytest

from rollway.ledger import RolloutEnded, begin_rollback
from rollway.model import Weights
from tests.flows.test_progressive_fakes import MOVED_TRAFFIC_SPEC, env_with_ledger, kinds, progressive_on


def test_a_pause_whose_traffic_another_rollback_moved_says_the_run_stops_without_moving_traffic(caplog):
    """The look logged "the traffic was moved by someone else, so this run rolls back", and the run
    then stopped on the ledger's rollback, moving nothing: on-call read of a rollback that was not
    this run's."""
    env = env_with_ledger()
    service = env.targets.canary_service

    def asked(pause, summary, watch=None):
        env.clock.sleep(30)
        record = env.ledger.get(service)
        begin_rollback(env.ledger, service, actor="erin", reason="aborted by erin", now=env.clock.now(),
                       rollout=record.rollout_id, holder="erin (rollway abort, pid 7)", lease_seconds=120,
                       wall=env.wall())
        env.router.weights = Weights(stable=100, canary=0)
        while watch() is None:
            env.clock.sleep(2)
        return None  # the watch ended the pause: nobody answered

    with caplog.at_level(logging.WARNING), pytest.raises(RolloutEnded):
        progressive_on(env, MOVED_TRAFFIC_SPEC, asked)
    assert kinds(env).count("rollback-start") == 1, kinds(env)  # erin's alone
    # The run's own words, not Prefect's log of the exception that failed it.
    said = [m for r in caplog.records if "Encountered exception" not in (m := r.getMessage())]
    drift = next(m for m in said if "moved by someone else" in m)
    assert "unless the ledger shows another rollback" in drift, drift
    assert any("rolling_back by erin" in m and "stops without moving traffic" in m for m in said), said
