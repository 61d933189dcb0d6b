"""A run whose shift waits long for the canary's new tasks keeps its rollout.

Its lease was renewed at each analysis tick and at the claim before the shift, and not while the
shift waited for ECS to start the stage's tasks (up to ``scale_timeout_seconds``, an hour at most)
and for them to pass their health checks: past its lease, another run took the rollout over while
this one still scaled the canary and moved the traffic.
"""

from __future__ import annotations

import time

import pytest

from rollway.approvals import ApprovalAnswer
from rollway.ledger import LockHeld
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on

LEASE = 600.0  # run_progressive's default, in the wall seconds the fake clock also keeps
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                   scale_timeout_seconds=1800, monitor_seconds=0)


def a_long_scale_up(env, minutes: int, meanwhile):
    """The canary's first scale-up takes ``minutes`` (on the fake clock); ``meanwhile`` runs once
    the run's lease, as taken before the shift, has run out."""
    real, service = env.deployer.wait_stable, env.targets.canary_service
    waited: list[int] = []

    def wait_stable(services, timeout_seconds, expected=None, between=None):  # the canary's watch: not what is tested
        if not waited:
            began = env.ledger.get(service).lease_expires
            for minute in range(1, minutes + 1):
                env.clock.sleep(60)
                waited.append(minute)
                # A run that renews its lease while it waits has done so by now: given real time
                # to, since it renews from a thread of its own that looks once a second
                # (flows.lease_keeper.LOOK_SECONDS), and a loaded machine wakes it seconds late; no
                # longer, since a run that does not renew waits this long at each of 20 minutes.
                give_up = time.monotonic() + 8
                while env.ledger.get(service).lease_expires - env.wall() < LEASE / 2 and time.monotonic() < give_up:
                    time.sleep(0.05)
                if env.wall() > began + 60:
                    meanwhile()
                    began = float("inf")
        return real(services, timeout_seconds, expected)

    env.deployer.wait_stable = wait_stable
    return waited


def test_a_second_run_cannot_take_over_a_rollout_whose_run_waits_in_a_long_scale_up():
    env = env_with_ledger()
    service = env.targets.canary_service
    tried: list[str] = []

    def another_run_tries_to_take_it():
        record = env.ledger.get(service)
        assert record.lease_expires > env.wall(), "the scaling run's lease ran out while it waited"
        with pytest.raises(LockHeld):
            env.ledger.acquire(service, owner="run-2", now=env.clock.now(), lease_seconds=LEASE,
                               rollout=record.rollout_id, wall=env.wall())
        tried.append("refused")

    waited = a_long_scale_up(env, minutes=20, meanwhile=another_run_tries_to_take_it)
    result = progressive_on(env, SPEC, lambda pause, summary: ApprovalAnswer(action="approve", approver="dana"))
    assert waited == list(range(1, 21)) and tried == ["refused"]
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(service)
    assert not [t for t in record.history if t.kind == "takeover"], [t.comment for t in record.history]
    assert record.owner is None  # released by the promotion, its own


def test_the_renewals_end_with_the_shift():
    """Renewed only while the shift waits: a run that went silent after it (its process stuck)
    must lose the rollout one lease later, as it did."""
    env = env_with_ledger()
    service = env.targets.canary_service
    a_long_scale_up(env, minutes=3, meanwhile=lambda: None)
    renewed: list[float] = []
    real = env.ledger.acquire

    def acquire(*args, **kwargs):
        renewed.append(env.wall())
        return real(*args, **kwargs)

    env.ledger.acquire = acquire
    assert progressive_on(env, SPEC, lambda pause, summary: ApprovalAnswer(action="approve",
                                                                          approver="dana")).outcome == "promoted"
    count = len(renewed)
    env.clock.sleep(3 * LEASE)
    time.sleep(2.5)
    assert len(renewed) == count, "the lease was still renewed after the run's shift had ended"
    assert env.ledger.get(service).owner is None
