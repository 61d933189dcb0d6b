"""A run's lease is taken on its own rollout, never on one that began since.

Rollout A is rolled back (`rollway abort`) and rollout B starts; B's run pauses for an approval,
which renews no lease. A run still working on A (a live run's analysis tick or a person's late
answer to A's pause, or the weekly tick that read A just before) took "the newest rollout's"
lease: it became B's owner, and giving it back left B with no owner at all, so the weekly
watchdog took B for abandoned and resumed it over its live, paused run. The lease is now taken
on the rollout the run read, and refused with RolloutSuperseded on any other.
"""

from __future__ import annotations

import pytest
from prefect import flow

from flows.journal import LedgerJournal
from flows.progressive import advance
from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.decide import Pause, StageState
from rollway.ledger import RolloutRecord, RolloutSuperseded, new_rollout_id
from rollway.phases import RolloutPhase
from tests.flows.test_progressive_fakes import IMAGE, WEEK, Intercept, env_with_ledger, full_spec, progressive_on

NEXT_IMAGE = "webordinary/edit-container:2.0.1"


def rolled_back_and_superseded(env, ledger, rollout_a: RolloutRecord) -> RolloutRecord:
    """A rolled back, then B created by ``run-B``, whose lease lapsed while it waits for an approval."""
    service = env.targets.canary_service
    rollouts = ledger._rollouts[service]
    rollouts[-1] = rollouts[-1].model_copy(update={"phase": RolloutPhase.ROLLED_BACK, "owner": None})
    now, wall = env.clock.now(), env.wall()
    b = RolloutRecord(service=service, rollout_id=new_rollout_id(now, after=rollout_a.rollout_id), image=NEXT_IMAGE,
                      spec_json=full_spec().model_copy(update={"image": NEXT_IMAGE}).model_dump_json(),
                      phase=RolloutPhase.PROGRESSING, created_at=now, updated_at=now)
    return ledger.create(b, owner="run-B", now=now, lease_seconds=600, wall=wall - 1000)


def rollout_a_and_its_journal():
    """A fake environment whose ledger holds rollout A, driven by run-A: (env, A, run-A's journal)."""
    env = env_with_ledger()
    spec = full_spec()
    a = env.ledger.create(RolloutRecord(
        service=env.targets.canary_service, rollout_id=new_rollout_id(env.clock.now()), image=IMAGE,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING), owner="run-A", now=env.clock.now(),
        lease_seconds=600, wall=env.wall())
    return env, a, LedgerJournal(env, spec, owner="run-A", lease_seconds=600, actor="alice", rollout_id=a.rollout_id)


def _tick(journal):
    journal.tick(StageState(stage_index=0, started_at=0.0), None)


def _late_answer(journal):
    pause = Pause(reason="approve 25%?", cause="approval", stage_index=1)
    journal.answered(pause, ApprovalAnswer(action="approve", approver="alice"), 1)


@pytest.mark.parametrize("write", [_tick, _late_answer], ids=["tick", "late answer"])
def test_a_run_of_a_rolled_back_rollout_does_not_take_the_next_rollouts_lease(write):
    env, a, journal = rollout_a_and_its_journal()
    b = rolled_back_and_superseded(env, env.ledger, a)
    with pytest.raises(RolloutSuperseded):
        write(journal)
    assert env.ledger.get(env.targets.canary_service) == b, "rollout B's owner or lease was changed"


@flow
def tick(env):
    return advance(env, auto_approve("carol"), owner="cron-2")


def _run_on_by_hand(env):
    return progressive_on(env, full_spec(), auto_approve("dave"), owner="dave-run", phased=False)


@pytest.mark.parametrize("run", [tick, _run_on_by_hand], ids=["weekly tick", "run by hand"])
def test_a_run_does_not_take_over_a_rollout_that_began_after_it_read(run):
    """The weekly tick (or a person's run, going on with every stage) reads A, week 1 passed and
    week 2 due; before it takes the lease, A is rolled back and B begins. The tick took B's lease
    and recorded A's week 2 on B (the traffic still at A's weights); B's run lost its ownership."""
    env = env_with_ledger()
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    a = env.ledger.get(env.targets.canary_service)
    env.clock.sleep(WEEK)
    real, superseded = env.ledger, []

    def before(name, args, kwargs):
        if name == "acquire" and not superseded:
            superseded.append(rolled_back_and_superseded(env, real, a))

    env.ledger = Intercept(real, before)
    with pytest.raises(RolloutSuperseded):
        run(env)
    assert real.get(env.targets.canary_service) == superseded[0], "rollout B's owner, lease or history was changed"


def test_a_late_answer_leaves_the_run_that_took_the_rollout_over_its_owner():
    """Run A pauses; run B takes A's lapsed lease and drives the rollout, then pauses in turn (its
    lease lapses too). A's late answer took B's lapsed lease to compare the history, found it moved
    on and gave the lease back: B was left without its ownership, and its own next answer refused."""
    from rollway.ledger import RolloutMovedOn

    env, a, journal = rollout_a_and_its_journal()
    service = env.targets.canary_service
    _tick(journal)
    env.clock.sleep(700)
    env.ledger.acquire(service, owner="run-B", now=env.clock.now(), lease_seconds=600, rollout=a.rollout_id,
                       wall=env.wall())
    env.clock.sleep(700)  # B waits at a pause of its own: its lease lapses
    with pytest.raises(RolloutMovedOn, match="held by run-B"):
        _late_answer(journal)
    assert env.ledger.get(service).owner == "run-B"


def test_a_pause_watch_whose_rollout_was_rolled_back_and_superseded_stands_down_naming_the_next_one(caplog):
    """Run A waits at a pause; A is rolled back (`rollway abort`) and rollout B begins, run B moving
    the traffic. A's watch takes B's shift for someone moving A's traffic, and taking A back before
    its rollback found B the newest: a bare "the write meant for A is not applied" ended the run,
    logged by nobody but the engine, under a traceback, naming neither the stand-down nor who drives
    the traffic now. It now says this run stands down and run B drives the rollout; the failure
    hook rolls nothing back, and B's traffic and record stay as they are."""
    import logging

    from flows.hooks import rollback_hooks
    from rollway.model import Weights
    from tests.flows.test_progressive_fakes import MOVED_TRAFFIC_SPEC, kinds

    env = env_with_ledger()
    service = env.targets.canary_service
    b: list[RolloutRecord] = []

    def asked(pause, summary, watch=None):
        a = env.ledger.get(service)
        b.append(rolled_back_and_superseded(env, env.ledger, a))
        env.router.weights = Weights.canary_at(25)  # B's first shifts
        while watch() is None:
            env.clock.sleep(2)
        return None  # the watch ended the pause: nobody answered

    @flow(name="superseded-while-paused", **rollback_hooks())
    def rollout_a():
        return progressive_on(env, MOVED_TRAFFIC_SPEC, asked)

    with caplog.at_level(logging.INFO):
        state = rollout_a(return_state=True)
    assert state.is_failed(), state
    said = str(state.result(raise_on_failure=False))
    assert "this run stands down" in said and "driven by run-B" in said and b[0].rollout_id in said, said
    assert "the rollback this run's look asked for is not done" in said, said
    assert any(r.getMessage() == said and r.levelno == logging.WARNING for r in caplog.records), caplog.text
    assert not any(r.exc_info for r in caplog.records if said in r.getMessage()), "logged under a traceback"
    assert "Traceback" not in caplog.text, caplog.text
    assert any(r.getMessage().startswith("not rolling back after run") and "stands down" in r.getMessage()
               for r in caplog.records), caplog.text
    assert env.router.weights == Weights.canary_at(25), "rollout B's traffic was moved"
    assert env.ledger.get(service) == b[0] and "rollback-start" not in kinds(env), "rollout B's record was changed"
