"""`rollway abort` once the newest rollout is promoted and its monitoring window has closed: it
rolls nothing back, and says how to go back to the previous version; doing what it says works.

It used to say only "nothing to abort for svc: its newest rollout is promoted", leaving the
person who wanted the previous version back to find the way in the README.
"""

from __future__ import annotations

from uuid import uuid4

from prefect import flow

import flows.rollback
import rollway.cli.ops as ops
from flows.finalize import run_finalize
from flows.progressive import run_progressive
from rollway.approvals import auto_approve
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_refusals import hooks_and_flows_see

OLD, IMAGE = "webordinary/edit-container:2.0.0", "webordinary/edit-container:3.0.0"


def decommissioning(image: str) -> RolloutSpec:
    # Webordinary's plan in one phase: promoted, watched, the old service scaled to 0.
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 100)], monitor_seconds=300,
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)],
                       verify_timeout_seconds=0.5, healthy_timeout_seconds=0.5)


@flow
def promote(env, image: str, monitor_seconds: float = 300):
    spec = decommissioning(image).model_copy(update={"monitor_seconds": monitor_seconds})
    return run_progressive(env, spec, auto_approve("alice"), owner=f"run-{uuid4().hex[:6]}", phased=False)


@flow
def finalize_on(env):
    return run_finalize(env, actor="alice", stable_timeout_seconds=5, verify_timeout_seconds=1)


def promoted(monkeypatch):
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    assert promote(env, IMAGE).outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED and record.last_transition("decommission") is not None
    return env


def abort_says(monkeypatch, capsys, env, *, read_services: bool = True) -> str:
    service = ops.Service(targets=env.targets, targets_block=f"promoted-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router, deployer=env.deployer if read_services else None)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    capsys.readouterr()
    assert ops.abort(approver="erin", reason="sessions lost", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None) == 1
    return " ".join(capsys.readouterr().err.split())


def test_before_finalize_it_says_to_run_the_rollback_flow_which_puts_the_previous_version_back(monkeypatch, capsys):
    env = promoted(monkeypatch)
    t = env.targets
    assert env.deployer.services[t.stable_service].desired == 0  # decommissioned, on the old revision

    said = abort_says(monkeypatch, capsys, env)

    assert env.router.weights == Weights(stable=0, canary=100), "abort rolled a closed promotion back"
    assert f"{t.stable_service} still runs the previous version (revision {STABLE_TD})" in said, said
    assert "prefect deployment run rollback/rollway --param reason=" in said, said
    # Doing what it says: the previous version serves everything again, the promoted one at 0.
    flows.rollback.rollback(reason="sessions lost", actor="erin")
    stable, canary = env.deployer.services[t.stable_service], env.deployer.services[t.canary_service]
    assert env.router.weights == Weights(stable=100, canary=0)
    assert stable.task_definition == STABLE_TD and stable.desired > 0
    assert canary.desired == 0 and canary.task_definition == STABLE_TD
    # Decommissioned or not, the rollback takes the promotion out of production, and is recorded
    # on it, as the message says: it used to say, and the ledger to keep, "promoted".
    rollout = env.ledger.get(t.canary_service).rollout_id
    assert f"It records the rollback on rollout {rollout}, which `rollway status` then shows rolled back" in said, said
    assert "keeps the rollout as promoted" not in said, said
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_promotion_whose_record_names_no_previous_revision_stays_promoted_as_it_says():
    """A record with no previous revision (written before rollouts recorded it): the rollback
    flow cannot tell that it takes the promotion out, so the ledger keeps it promoted, and the
    message says why rather than promising a record."""
    from rollway.cli.way_back import nothing_to_abort
    from rollway.ledger import RolloutRecord, Transition, new_rollout_id

    t = fake_environment().targets
    record = RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(1_700_000_000), image=IMAGE,
                           spec_json=decommissioning(IMAGE).model_dump_json(), phase=RolloutPhase.PROMOTED,
                           weights=Weights(stable=0, canary=100), canary_task_definition="webordinary-edit-task:9",
                           history=(Transition(at=1_700_000_000, kind="decommission", actor="monitor"),))

    said = " ".join(nothing_to_abort(t, record).split())

    assert "The ledger does not record the revision the rollout replaced, so it keeps the rollout as promoted" in said
    assert "It records the rollback" not in said, said


def test_without_a_decommission_it_says_the_rollback_is_recorded_which_status_then_shows(monkeypatch, capsys):
    """No window owed (monitor_seconds 0): nothing decommissioned the rollout, so the rollback flow
    records its rollback on it. The message said the ledger would keep it promoted regardless."""
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    t = env.targets
    assert promote(env, IMAGE, monitor_seconds=0).outcome == "promoted"
    rollout = env.ledger.get(t.canary_service).rollout_id

    said = abort_says(monkeypatch, capsys, env)

    assert f"It records the rollback on rollout {rollout}, which `rollway status` then shows rolled back" in said, said
    assert "The ledger keeps the rollout as promoted" not in said, said
    flows.rollback.rollback(reason="sessions lost", actor="erin")
    record = env.ledger.get(t.canary_service)
    assert (record.rollout_id, record.phase) == (rollout, RolloutPhase.ROLLED_BACK)
    assert env.router.weights == Weights(stable=100, canary=0)


def test_after_finalize_it_names_the_previous_image_to_roll_out_again(monkeypatch, capsys):
    """Finalized, the stable service runs the promoted version: the rollback flow would move the
    traffic onto it. Going back is a new rollout of the previous version, named from the ledger."""
    env = promoted(monkeypatch)
    old_revision = env.ledger.get(env.targets.canary_service).canary_task_definition
    finalize_on(env)
    # The release after it, promoted and finalized too; it replaced the first one's revision.
    assert promote(env, IMAGE.replace("3.0.0", "4.0.0")).outcome == "promoted"
    finalize_on(env)
    said = abort_says(monkeypatch, capsys, env)

    assert "rollback/rollway" not in said, said
    assert "no service runs the previous version" in said, said
    assert f"no service runs the previous version ({IMAGE}, revision {old_revision}) any more" in said, said
    assert f"with the spec's `image` set to {IMAGE}" in said, said
    assert "progressive_rollout" in said, said


def test_a_finalize_that_did_not_finish_is_to_be_run_again_first(monkeypatch, capsys):
    env = promoted(monkeypatch)
    service = env.targets.canary_service
    env.ledger._rollouts[service][-1] = env.ledger.get(service).model_copy(update={"history": (
        *env.ledger.get(service).history,
        env.ledger.get(service).history[-1].model_copy(update={"kind": "finalize-start", "actor": "bob"}))})

    said = abort_says(monkeypatch, capsys, env)

    assert "its finalize, begun by bob" in said and "Run `rollway finalize` again to finish it" in said, said
    assert "rollback/rollway" not in said, said


def set_by_hand(env, name: str, task_definition: str) -> None:
    """A service pointed at another revision outside rollway (the console, the AWS CLI)."""
    env.deployer.services[name] = env.deployer.services[name].model_copy(update={"task_definition": task_definition})


def test_finalized_outside_rollway_it_says_going_back_is_a_new_rollout_not_the_rollback_flow(monkeypatch, capsys):
    """The stable service put on the promoted revision by hand: the ledger records no finalize, and
    abort said the rollback flow would put the previous version back and record it; the flow moves
    the traffic onto the promoted version and records nothing."""
    env = promoted(monkeypatch)
    t = env.targets
    record = env.ledger.get(t.canary_service)
    set_by_hand(env, t.stable_service, record.canary_task_definition)

    said = abort_says(monkeypatch, capsys, env)

    assert (f"{t.stable_service} runs {record.canary_task_definition}, not the previous version's revision "
            f"{STABLE_TD}, but the promoted revision: it was finalized outside rollway") in said, said
    assert f"not record it on rollout {record.rollout_id}" in said and f"`image` set to {OLD}" not in said, said
    assert "It records the rollback" not in said and "rollback/rollway" not in said, said
    assert "progressive_rollout" in said, said
    # What it says of the flow is what the flow does.
    flows.rollback.rollback(reason="sessions lost", actor="erin")
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.PROMOTED
    assert env.deployer.services[t.stable_service].task_definition == record.canary_task_definition


def test_a_canary_changed_since_it_says_the_rollback_goes_back_but_is_not_recorded(monkeypatch, capsys):
    """The canary service on another revision than the promotion's: a `canary` flow run may drive
    it, and one left going moves the traffic again after the rollback, so what to do about it comes
    before the rollback flow."""
    env = promoted(monkeypatch)
    t = env.targets
    rollout = env.ledger.get(t.canary_service).rollout_id
    set_by_hand(env, t.canary_service, "webordinary-edit-task:77")

    said = abort_says(monkeypatch, capsys, env)

    assert f"{t.stable_service} still runs the previous version (revision {STABLE_TD})" in said, said
    assert "prefect deployment run rollback/rollway --param reason=" in said, said
    assert (f"Yet {t.canary_service} runs webordinary-edit-task:77, not the promoted revision") in said, said
    assert "a `canary` flow run may be driving it" in said, said
    let_it_finish = said.index("let it finish, or cancel it (in the Prefect UI")
    assert let_it_finish < said.index("run the `rollback` flow by hand"), said
    assert f"does not record it on rollout {rollout}, which stays promoted" in said, said
    assert "It records the rollback" not in said, said
    flows.rollback.rollback(reason="sessions lost", actor="erin")
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.PROMOTED


def test_services_that_cannot_be_read_make_the_record_conditional_on_what_the_flow_reads(monkeypatch, capsys):
    env = promoted(monkeypatch)
    t = env.targets
    record = env.ledger.get(t.canary_service)

    said = abort_says(monkeypatch, capsys, env, read_services=False)

    assert (f"It records the rollback on rollout {record.rollout_id}, which `rollway status` then shows rolled back, "
            f"and the next rollout starts as usual, if {t.stable_service} still runs revision {STABLE_TD} and "
            f"{t.canary_service} revision {record.canary_task_definition} when it runs") in said, said
