"""A rollback run again leaves on a bound flag a person turned back on after the first run
disabled it, and says so where people read about the rollback: the SNS notice, and the incident
report (from the rollback's end in the ledger). It said so only in the run's log, so the page and
the report told on-call every bound flag was off while the feature still served users.
"""
from __future__ import annotations

import time

from flows.rollback import rollback
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flag_binding import FlagChange, apply_bindings, set_flag
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_notice import rollback_paging_nobody

SQS = "use_sqs_architecture"
INTERRUPTS = "enable_interrupt_handling"
SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)],
                   flags=[FlagBinding(feature=SQS), FlagBinding(feature=INTERRUPTS)])
SERVICE_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:2"


def rolling_back_with_flags(monkeypatch, sqs_held_by: str | None = None):
    """A rollout at 5 % with both bound flags on at 5 %, whose rollback `rollway abort` has begun;
    with ``sqs_held_by``, that rollout wrote SQS (at 5 %) and this one never did."""
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature=SQS), FlagState(feature=INTERRUPTS)])
    now = env.clock.now()
    record = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(now - 100), image=SPEC.image,
                           spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                           weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    env.ledger.create(record, owner="process/old", now=now - 100, lease_seconds=0)
    ours = SPEC.flags
    if sqs_held_by is not None:
        apply_bindings(env.flags, [FlagBinding(feature=SQS)], 5, actor="rollway", now=now - 95, rollout=sqs_held_by)
        ours = [FlagBinding(feature=INTERRUPTS)]
    apply_bindings(env.flags, ours, 5, actor="rollway", now=now - 90, rollout=record.rollout_id)
    begin_rollback(env.ledger, env.targets.canary_service, actor="erin", reason="aborted by erin: errors",
                   now=now - 5, rollout=record.rollout_id)
    env.router.weights = Weights.canary_at(5)
    env.deployer.services[env.targets.canary_service] = env.deployer.services[env.targets.canary_service].model_copy(
        update={"task_definition": SERVICE_TD, "desired": 2, "running": 2})
    hooks_and_flows_see(monkeypatch, env)
    return env, record


def test_a_flag_left_on_is_named_in_the_notice_and_the_incident_report(monkeypatch):
    env, record = rolling_back_with_flags(monkeypatch)
    rollback_paging_nobody(env)  # the flags went off; the page failed, so the rollback stays open
    assert not env.flags.get(SQS).enabled
    # On-call turns one back on: stable serves it too, and users need it.
    set_flag(env.flags, FlagChange(feature=SQS, enabled=True, percentage=5, reason="stable needs it"),
             actor="oncall", now=env.clock.now())

    done = rollback(reason="abort again")

    assert env.flags.get(SQS).enabled, "the rollback run again undid on-call's re-enable"
    assert done.flags_disabled == ()
    assert len(done.flags_kept) == 1 and done.flags_kept[0].startswith(f"{SQS}: left on 5%")
    _, body = env.notifier.messages[-1]
    assert f"Feature flag LEFT ON, as a person set it: {SQS}: left on 5%" in body, body
    assert "oncall turned it back on after rollout" in body and "stable needs it" in body, body

    stored = env.ledger.get(env.targets.canary_service)
    assert stored.phase is RolloutPhase.ROLLED_BACK
    steps = incident_report(stored).split("## Rollback steps")[1].split("## Notification")[0]
    assert f"disabled (`{INTERRUPTS}`;" in steps, steps
    assert f"**left on** as a person set it: {SQS}: left on 5%" in steps and "oncall" in steps, steps



def test_the_page_of_a_rollback_run_again_says_the_flags_an_earlier_run_disabled_are_off(monkeypatch):
    """The first run disabled both flags and could not page; the page of the run that finished it
    said nothing of the flags at all, and on-call could not tell whether the features still served."""
    env, record = rolling_back_with_flags(monkeypatch)
    rollback_paging_nobody(env)
    assert not env.flags.get(SQS).enabled and not env.flags.get(INTERRUPTS).enabled

    done = rollback(reason="abort again")

    assert done.flags_disabled == ()
    _, body = env.notifier.messages[-1]
    assert f"Feature flags already off: {SQS}, {INTERRUPTS}." in body, body
    assert "Feature flags disabled" not in body, body


def aborting(monkeypatch, env, capsys):
    """`rollway abort` run on ``env``: its exit code and what it printed, on one line."""
    from uuid import uuid4

    from rollway.cli import ops

    service = ops.Service(targets=env.targets, targets_block=f"abort-flags-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)
    return code, " ".join(capsys.readouterr().out.split())


def test_rollway_abort_says_which_flags_it_turned_off(monkeypatch, capsys):
    """`rollway abort` ended on the traffic and the tasks: the person who aborted was not told
    which features went off for every user."""
    env, _ = rolling_back_with_flags(monkeypatch)
    code, out = aborting(monkeypatch, env, capsys)
    assert code == 0, out
    assert not env.flags.get(SQS).enabled and not env.flags.get(INTERRUPTS).enabled
    assert "feature flags turned off: " in out and SQS in out and INTERRUPTS in out, out


def test_rollway_abort_says_which_flag_it_left_on(monkeypatch, capsys):
    """A flag on-call turned back on after the first rollback attempt stays on, and the person
    finishing the rollback with `rollway abort` is told so (it said only the traffic and tasks)."""
    env, _ = rolling_back_with_flags(monkeypatch)
    rollback_paging_nobody(env)
    set_flag(env.flags, FlagChange(feature=SQS, enabled=True, percentage=5, reason="stable needs it"),
             actor="oncall", now=env.clock.now())
    capsys.readouterr()
    code, out = aborting(monkeypatch, env, capsys)
    assert code == 0, out
    assert env.flags.get(SQS).enabled
    assert f"feature flag LEFT ON, as a person set it: {SQS}: left on 5%" in out, out


def test_rollway_abort_says_which_flag_it_left_to_the_rollout_holding_it(monkeypatch, capsys):
    """A bound flag another rollout holds, which this rollout never set, is left as it is by the
    rollback: `rollway abort` said only the flags it turned off, and the person who aborted read
    the feature as off for everyone while it served the other rollout's users."""
    other = new_rollout_id(time.time() - 95)
    env, _ = rolling_back_with_flags(monkeypatch, sqs_held_by=other)

    code, out = aborting(monkeypatch, env, capsys)

    assert code == 0, out
    assert env.flags.get(SQS).enabled and not env.flags.get(INTERRUPTS).enabled
    assert f"feature flags turned off: {INTERRUPTS}" in out, out
    assert (f"feature flag LEFT AS IT IS, another rollout holds it: {SQS}: left on 5%" in out and other in out), out


def test_a_bound_flag_missing_from_the_table_is_said_not_found_not_already_off(monkeypatch):
    """The rollout binds a flag the flag table does not hold (misspelt in the spec, or deleted): the
    page listed it among the flags "already off", and on-call took the feature it was meant to
    gate for disabled, where nothing had ever been disabled for it."""
    env, record = rolling_back_with_flags(monkeypatch)
    del env.flags.flags[INTERRUPTS]

    done = rollback(reason="abort")

    assert done.flags_disabled == (SQS,)
    _, body = env.notifier.messages[-1]
    assert "already off" not in body, body
    assert f"Bound feature flag NOT FOUND in the flag table: {INTERRUPTS}" in body, body
    assert any(INTERRUPTS in step and "not found" in step for step in done.steps), done.steps


def test_a_rollback_reads_an_already_off_flag_no_more_than_its_disable_does(monkeypatch):
    """Telling a bound flag the table does not hold from one already off read each "already off"
    flag again, after the traffic moved and before the page: a round trip each (up to ~30 s on a
    throttled table). The disable already knows which flags it found missing."""
    import copy

    from rollway.flag_binding import disable_bindings

    env, record = rolling_back_with_flags(monkeypatch)
    rollback_paging_nobody(env)
    alone = copy.deepcopy(env.flags)
    alone.reads = 0
    disable_bindings(alone, SPEC.flags, actor="rollway", reason="abort again", now=env.clock.now(),
                     rollout=record.rollout_id)
    before = env.flags.reads

    done = rollback(reason="abort again")

    assert done.flags_disabled == ()
    _, body = env.notifier.messages[-1]
    assert f"Feature flags already off: {SQS}, {INTERRUPTS}." in body, body
    assert env.flags.reads - before == alone.reads, (env.flags.reads - before, alone.reads)
