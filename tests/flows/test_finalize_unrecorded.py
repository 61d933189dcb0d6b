"""Finalizing a promotion the ledger does not record: the `canary` flow's (it keeps no ledger).

In-run with the canary flow's ``finalize=True``, or afterwards with the finalize flow's
``unrecorded``. On the embedded AWS with the Prefect test harness.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.states import Cancelled, Paused, Pending, Running

import flows.canary
import flows.finalize
from flows.approvals import propose_state
from flows.canary import RolloutRefused, canary
from flows.finalize import finalize, run_finalize
from rollway.aws.ecs import EcsDeployer
from rollway.aws.ledger import DynamoLedger
from rollway.finalize import FinalizeIncomplete, FinalizeRefused, plan_unrecorded
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import rollout_flows_see
from tests.flows.moto_env import inbox, received_subjects, simulated
from tests.flows.test_canary_moto import read_back
from rollway.targets import Targets
from blocks.targets import RollwayTargets
from tests.flows.test_finalize import (
    ALL_CANARY, ALL_STABLE, _record, _state, failing, preflight_on, promote_by_hand, rollout_spec, saved_blocks, writes,
)

# The finalize flow makes clients of its own from the saved blocks: its calls are watched on every
# client in the process (every_call), not on the test's.
SERVICES = ("ecs", "elbv2", "dynamodb", "sns")
UNRECORDED = "rollway finalize --unrecorded"


def short_spec(image: str, monitor_seconds: float = 180) -> RolloutSpec:
    # Two stages and a three-minute window, its verdict due at most five minutes on: about 2 s of
    # wall time for the window at SPEED. Its looks after the first published period count, so
    # the window is verified (finalize refuses an unverified one) as a longer one is.
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
                       monitor_seconds=monitor_seconds)


def canary_flow(env, image: str, blocks: str, flow_fn=canary, **options):
    """The `canary` flow (or ``flow_fn``, a variant of it) on the simulated world ``env`` lives
    in, through saved blocks. Call ``rollout_flows_see(monkeypatch, env)`` first: the flow then
    runs on ``env`` and its PacedClock. On a clock of its own (built from ``clock``), its reads ran
    ahead of a simulator that lagged under load: a stage read periods that held nothing yet, and
    paused for a person until the test timed out, or its window was "not verified"."""
    clock = {"speed": env.clock.speed, "anchor": env.clock.anchor}
    return flow_fn(spec=short_spec(image).model_dump(mode="json"), targets_block=blocks, aws_credentials_block=blocks,
                   clock=clock, **options)


def saved_other_service(aws, blocks: str) -> str:
    """A targets block, next to ``blocks``, naming another service (billing) in the same account."""
    other = f"{blocks}-other"
    RollwayTargets(**aws.targets.model_copy(update={
        "cluster": "billing-cluster", "stable_service": "billing", "canary_service": "billing-canary",
        "canary_target_group": "billing-canary", "stable_target_group": "billing-stable",
    }).model_dump()).save(other, overwrite=True)
    return other


def finalize_flow(blocks: str, **options):
    return finalize(actor="alice", targets_block=blocks, aws_credentials_block=blocks, stable_timeout_seconds=30,
                    verify_timeout_seconds=5, **options)


def ledger_of(aws):
    return DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(aws.targets.canary_service)


def rollback_runs() -> int:
    with get_client(sync_client=True) as client:
        return len(client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["rollback"]))))


# --- The canary flow finalizes in-run -----------------------------------------------------


def test_the_canary_flow_with_finalize_leaves_the_promoted_version_on_stable_and_the_next_rollout_starts(
        aws, monkeypatch):
    blocks = saved_blocks(aws)
    url = inbox(aws)
    before = read_back(aws)[1].task_definition
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        result = canary_flow(env, image, blocks, finalize=True)
        assert result.outcome == "promoted", result.reason
        assert result.finalized is not None and result.finalized.outcome == "finalized"
        weights, stable, canary_service = read_back(aws)
        assert weights == ALL_STABLE
        assert stable.task_definition != before and stable.task_definition == canary_service.task_definition
        promoted = aws.get_client("ecs").describe_task_definition(taskDefinition=stable.task_definition)
        registered = promoted["taskDefinition"]["containerDefinitions"][0]["image"]
        assert registered == result.pinned_image == env.images.pin(image)
        assert canary_service.desired == 0 and stable.desired >= 1
        assert f"Finalized: {aws.targets.stable_service}" in received_subjects(aws, url)
        assert ledger_of(aws) is None, "the canary flow keeps no ledger, finalizing included"
        # The next release can start: preflight passes.
        preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:2.1.0"))


def test_a_finalize_that_fails_inside_the_canary_flow_is_not_rolled_back(aws, monkeypatch):
    """Rolling back a run whose promotion passed and whose finalize stopped would put the
    previous version back in production: the hooks leave it alone and the canary keeps serving."""
    blocks = saved_blocks(aws)
    url = inbox(aws)
    rollbacks = rollback_runs()
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        # The run acts on the clients the test can make fail; a rollback (through the saved
        # blocks, on clients of its own) would not be stopped by it.
        rollout_flows_see(monkeypatch, env)
        canary_group = f"/{aws.targets.canary_target_group}/"  # in the target group's ARN
        restore = failing(aws.get_client("elbv2"), "ModifyRule", when=lambda params: _none_to(canary_group, params))
        try:
            with pytest.raises(FinalizeIncomplete, match="move the traffic to the stable target group") as stopped:
                canary_flow(env, image, blocks, finalize=True)
        finally:
            restore()
    assert UNRECORDED in str(stopped.value)
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_CANARY and canary_service.desired >= 1, "the canary still serves everything"
    assert rollback_runs() == rollbacks, "no rollback was started"
    assert not any(s.startswith("Rollback") for s in received_subjects(aws, url))

    # What the error says to do finishes the job.
    assert finalize_flow(blocks, unrecorded=True).outcome == "finalized"
    assert read_back(aws)[0] == ALL_STABLE


def test_the_canary_flow_does_not_finalize_a_canary_changed_during_its_window(aws, monkeypatch):
    """A hotfix pointed the canary service at another revision while the run watched its
    window: finalizing in-run moved that unjudged revision onto the stable service, where
    `rollway finalize` (recorded) refuses it."""
    blocks = saved_blocks(aws)
    t = aws.targets
    rollbacks = rollback_runs()
    before = read_back(aws)[1].task_definition
    watch = flows.canary.run_monitor
    hotfix = {}

    def hotfixed_during_the_window(*args, **kwargs):
        watched = watch(*args, **kwargs)
        deployer = EcsDeployer(aws.get_client("ecs"), t)
        hotfix["td"] = deployer.register_revision(f"{aws.topology.repository_uri}:2.0.1", before)
        aws.get_client("ecs").update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=hotfix["td"])
        return watched

    monkeypatch.setattr(flows.canary, "run_monitor", hotfixed_during_the_window)
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        with pytest.raises(FinalizeRefused, match="was changed after the promotion") as refused:
            canary_flow(env, image, blocks, finalize=True)
    assert UNRECORDED in str(refused.value) and "Nothing was changed" in str(refused.value)
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_CANARY and canary_service.task_definition == hotfix["td"], "the hotfix still serves"
    assert stable.task_definition == before, "the unjudged revision was not put on the stable service"
    assert rollback_runs() == rollbacks, "no rollback was started"


def test_the_canary_flow_does_not_finalize_while_a_finalize_run_of_the_service_has_not_ended(aws, monkeypatch):
    """`rollway finalize --unrecorded` (or the finalize deployment) started while the run watched
    its window: the in-run finalize looked for no such run, and both moved the services and the
    traffic and told people twice. It refuses, as that flow does, and the promotion stands."""
    blocks = saved_blocks(aws)
    rollbacks = rollback_runs()
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        with get_client(sync_client=True) as client:
            other = client.create_flow_run(finalize, parameters={"targets_block": blocks, "unrecorded": True},
                                           state=Running())
            try:
                with pytest.raises(FinalizeRefused) as refused:
                    canary_flow(env, image, blocks, finalize=True)
            finally:
                client.set_flow_run_state(other.id, Cancelled(message="test over"), force=True)
    said = str(refused.value)
    assert "another run of the `finalize` flow on webordinary-edit-service-canary has not ended: " in said, said
    assert str(other.id) in said and UNRECORDED in said, said
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_CANARY and canary_service.desired >= 1, "the canary still serves everything"
    assert rollback_runs() == rollbacks, "no rollback was started"


class ProcessDied(BaseException):
    """Stands for the run's process dying: Prefect reports a run that raised it as Crashed."""


@pytest.mark.parametrize("step", ["before any step", "after the stable service moved"])
def test_a_canary_run_that_crashes_while_finalizing_is_not_rolled_back(aws, monkeypatch, step):
    """The promotion passed its window and the run started finalizing, then crashed. Its
    on_crashed hook used to roll back: the previous version back in production and a Rollback
    alert, for a release that had passed everything. The run is tagged as finalizing first,
    the hook leaves it alone, and `finalize --unrecorded` finishes the job."""
    blocks = saved_blocks(aws)
    url = inbox(aws)
    rollbacks = rollback_runs()
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        finalize_steps = flows.canary.run_finalize

        def dies(*args, **kwargs):
            if step == "before any step":
                raise ProcessDied()
            monkeypatch.setattr(flows.finalize.traffic, "set_weights", lambda *a, **k: (_ for _ in ()).throw(ProcessDied()))
            return finalize_steps(*args, **kwargs)

        monkeypatch.setattr(flows.canary, "run_finalize", dies)
        with pytest.raises(ProcessDied):
            canary_flow(env, image, blocks, finalize=True)
        monkeypatch.undo()
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_CANARY and canary_service.desired >= 1, "the canary still serves everything"
    assert rollback_runs() == rollbacks, "no rollback was started"
    assert not any(s.startswith("Rollback") for s in received_subjects(aws, url))
    assert finalize_flow(blocks, unrecorded=True).outcome == "finalized"
    weights, stable, _ = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == canary_service.task_definition


def _none_to(group: str, params: dict) -> bool:
    """Whether a ModifyRule call sends no traffic to the target group whose ARN holds ``group``."""
    forwards = [g for action in params["Actions"] for g in action.get("ForwardConfig", {}).get("TargetGroups", [])]
    return any(group in g["TargetGroupArn"] and g["Weight"] == 0 for g in forwards)


# --- The canary flow promoted; the finalize flow finishes with `unrecorded` -----------------


def test_a_canary_flow_promotion_is_finalized_with_unrecorded_and_refused_without(aws, every_call, monkeypatch):
    blocks = saved_blocks(aws)
    with simulated(aws, canary_error_rate=0.001) as (env, image):
        rollout_flows_see(monkeypatch, env)
        assert canary_flow(env, image, blocks).outcome == "promoted"
    # The simulator is stopped: every call watched below is finalize's (its targets stay registered).
    promoted = read_back(aws)
    assert promoted[0] == ALL_CANARY

    calls = [every_call(s) for s in SERVICES]
    with pytest.raises(FinalizeRefused, match="The `canary` flow keeps no ledger") as refused:
        finalize_flow(blocks)
    assert UNRECORDED in str(refused.value) and "Nothing was changed" in str(refused.value)
    assert writes(*calls) == [] and read_back(aws) == promoted

    result = finalize_flow(blocks, unrecorded=True)
    assert (result.outcome, result.rollout_id) == ("finalized", None)
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_STABLE and canary_service.desired == 0
    assert stable.task_definition == promoted[2].task_definition, "the stable service runs the promoted version"
    assert ledger_of(aws) is None, "nothing written to the ledger"

    # A second run finds nothing to do from what AWS shows, and writes nothing.
    calls = [every_call(s) for s in SERVICES]
    assert finalize_flow(blocks, unrecorded=True).outcome == "nothing_to_finalize"
    assert writes(*calls) == []
    preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:2.1.0"))


@flow
def unrecorded_on(env):
    return run_finalize(env, actor="alice", stable_timeout_seconds=30, verify_timeout_seconds=5, unrecorded=True)


@pytest.mark.parametrize("deregistered", [False, True], ids=["promoted", "promoted-deregistered-since"])
def test_an_unrecorded_finalize_stopped_after_the_traffic_moved_is_finished_by_the_next_run(
        aws, watch_calls, ecs_updates_retried_at_once, ecs_refuses_inactive_revisions, deregistered, capsys):
    env, release, _ = promote_by_hand(aws)
    if deregistered:  # the stable service takes an identical copy of it
        aws.get_client("ecs").deregister_task_definition(taskDefinition=release)
    canary_name = aws.targets.canary_service
    restore = failing(aws.get_client("ecs"), "UpdateService", when=lambda params: params.get("service") == canary_name)
    try:
        with pytest.raises(FinalizeIncomplete, match=f"The traffic is on .*{UNRECORDED}"):
            unrecorded_on(env)
    finally:
        restore()
    weights, stable, canary_service = read_back(aws)
    assert weights == ALL_STABLE and (stable.task_definition != release) == deregistered
    assert canary_service.desired == 2

    elb_calls = watch_calls(aws.get_client("elbv2"))
    again = unrecorded_on(env)
    assert again.outcome == "finalized" and read_back(aws)[2].desired == 0
    assert again.task_definition == stable.task_definition
    assert "ModifyRule" not in elb_calls, "the traffic was not moved a second time"
    assert ecs_refuses_inactive_revisions == []
    nothing = unrecorded_on(env)
    assert nothing.outcome == "nothing_to_finalize"
    # The canary runs the promoted revision, the stable service its copy: not "the same task definition".
    t = aws.targets
    found = (f"{t.canary_service} is at 0 tasks on {release}, of which {stable.task_definition} is an identical copy"
             if deregistered else f"{t.canary_service} is at 0 tasks on the same task definition")
    assert found in nothing.steps[-1], nothing.steps
    if deregistered:  # and the command's closing line says it so
        from rollway.cli import app

        blocks = saved_blocks(aws)
        options = ["--unrecorded", "--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
        assert app(["finalize", *options], result_action="return_value") == 0
        closing = capsys.readouterr().out.strip().splitlines()[-1]
        assert closing.startswith("nothing to finalize: ") and found in closing, closing
        assert "same task definition" not in closing, closing


def test_unrecorded_plans_from_what_aws_shows():
    def plan(live, stable, canary, newest=None):
        spec = RolloutSpec.for_rollback(newest.spec_json) if newest else None
        return plan_unrecorded(newest, spec, live=live, stable=stable, canary=canary, canary_runs=(), targets=Targets())

    start = plan(ALL_CANARY, _state("app:1", 2), _state("app:2", 5))
    assert (start.action, start.task_definition, start.stable_desired) == ("start", "app:2", 5)
    assert plan(ALL_STABLE, _state("app:2", 5), _state("app:2", 5)).action == "after-traffic"
    assert plan(ALL_STABLE, _state("app:2", 5), _state("app:2", 0)).action == "done"
    # A recorded rollout finalized earlier is closed: the `canary` flow promoted since.
    finalized = _record("promote", "finalize-start", "finalized")
    assert plan(ALL_CANARY, _state("app:2", 3), _state("app:3", 3), newest=finalized).action == "start"


# --- What `unrecorded` refuses, before any write ---------------------------------------------


@contextmanager
def canary_run_in(state, **parameters) -> Iterator[str]:
    """A `canary` flow run (no process behind it) left in ``state``; cancelled afterwards."""
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(canary, parameters=parameters, state=Pending() if state is Pending else Running())
        if state is Paused:
            paused = propose_state(client, Paused(timeout_seconds=600, pause_key="k"), run.id)
            assert paused.is_paused()
        try:
            yield str(run.id)
        finally:
            client.set_flow_run_state(run.id, Cancelled(message="test over"), force=True)


@pytest.mark.parametrize("state", [Running, Paused, Pending], ids=["running", "paused", "pending"])
def test_unrecorded_is_refused_while_a_canary_flow_run_has_not_ended(aws, every_call, state):
    blocks = saved_blocks(aws)
    promote_by_hand(aws)
    promoted = read_back(aws)
    calls = [every_call(s) for s in SERVICES]
    with canary_run_in(state) as run_id:
        with pytest.raises(FinalizeRefused, match="`canary` flow on webordinary-edit-service-canary have not ended") as refused:
            finalize_flow(blocks, unrecorded=True)
    assert run_id in str(refused.value) and "would roll it back" in str(refused.value)
    assert writes(*calls) == [] and read_back(aws) == promoted
    # Once that run has ended, the same command finalizes.
    assert finalize_flow(blocks, unrecorded=True).outcome == "finalized"


def test_unrecorded_is_refused_while_another_finalize_of_the_service_has_not_ended(aws, every_call):
    """No record, so no lease kept two unrecorded finalizes apart: both moved the services and the
    traffic, and people were told twice. A run's own flow run does not count against it."""
    blocks = saved_blocks(aws)
    promote_by_hand(aws)
    promoted = read_back(aws)
    calls = [every_call(s) for s in SERVICES]
    with get_client(sync_client=True) as client:
        other = client.create_flow_run(finalize, parameters={"targets_block": blocks, "unrecorded": True},
                                       state=Running())
        try:
            with pytest.raises(FinalizeRefused) as refused:
                finalize_flow(blocks, unrecorded=True)
        finally:
            client.set_flow_run_state(other.id, Cancelled(message="test over"), force=True)
    said = str(refused.value)
    assert said.startswith("another run of the `finalize` flow on webordinary-edit-service-canary has not ended: "), said
    assert str(other.id) in said and said.endswith("Nothing was changed"), said
    assert writes(*calls) == [] and read_back(aws) == promoted
    assert finalize_flow(blocks, unrecorded=True).outcome == "finalized"


def test_unrecorded_is_not_refused_by_a_canary_flow_run_of_another_service(aws):
    """Runs of the `canary` flow for other services (their own targets block) used to refuse
    every `finalize --unrecorded`: a platform running canaries of several services could not
    finalize one while another's ran. A run of another service is not counted; a run whose
    targets block cannot be loaded still is, and is named."""
    blocks = saved_blocks(aws)
    promote_by_hand(aws)
    other = saved_other_service(aws, blocks)
    with canary_run_in(Running, targets_block="no-such-block") as unknown:
        with canary_run_in(Running, targets_block=other):
            with pytest.raises(FinalizeRefused, match="1 run\\(s\\) of the `canary` flow") as refused:
                finalize_flow(blocks, unrecorded=True)
            assert unknown in str(refused.value)
    with canary_run_in(Running, targets_block=other) as billing:
        done = finalize_flow(blocks, unrecorded=True)
    assert done.outcome == "finalized", billing
    assert read_back(aws)[0] == ALL_STABLE


def test_unrecorded_is_refused_by_a_canary_run_due_now_but_not_by_one_scheduled_for_tomorrow(aws):
    """A schedule creates its next runs ahead: a `canary` deployment on a schedule always had one
    scheduled, and every unrecorded finalize was refused. A run due before the finalize can be
    over still refuses it."""
    import datetime as dt

    from prefect.states import AwaitingRetry, Scheduled

    blocks = saved_blocks(aws)
    promote_by_hand(aws)
    now = dt.datetime.now(dt.timezone.utc)
    with get_client(sync_client=True) as client:
        tomorrow = client.create_flow_run(canary, state=Scheduled(scheduled_time=now + dt.timedelta(days=1)))
        due = client.create_flow_run(canary, state=Scheduled(scheduled_time=now + dt.timedelta(seconds=30)))
        try:
            with pytest.raises(FinalizeRefused, match="1 run\\(s\\) of the `canary` flow") as refused:
                finalize_flow(blocks, unrecorded=True)
            assert str(due.id) in str(refused.value) and str(tomorrow.id) not in str(refused.value)
            client.set_flow_run_state(due.id, Cancelled(message="test over"), force=True)
            # Moved to start sooner: its expected start time stays tomorrow's, its state's does not.
            client.set_flow_run_state(tomorrow.id, Scheduled(scheduled_time=now + dt.timedelta(seconds=30)), force=True)
            with pytest.raises(FinalizeRefused, match=str(tomorrow.id)):
                finalize_flow(blocks, unrecorded=True)
            # A retry waiting out its delay has started its work already: it counts whenever it resumes.
            client.set_flow_run_state(tomorrow.id, AwaitingRetry(scheduled_time=now + dt.timedelta(days=2)), force=True)
            with pytest.raises(FinalizeRefused, match=str(tomorrow.id)):
                finalize_flow(blocks, unrecorded=True)
            client.set_flow_run_state(tomorrow.id, Scheduled(scheduled_time=now + dt.timedelta(days=2)), force=True)
            assert finalize_flow(blocks, unrecorded=True).outcome == "finalized"
        finally:
            for run in (tomorrow, due):
                client.set_flow_run_state(run.id, Cancelled(message="test over"), force=True)


@pytest.mark.parametrize(("history", "phase", "weights", "refusal"), [
    ((), None, Weights.canary_at(5), "carries 5% of the traffic .*a rollout in progress, not a promotion"),
    (("start", "shift"), RolloutPhase.PROGRESSING, ALL_CANARY, "in the ledger, rollout .* is progressing"),
    (("start", "promote"), RolloutPhase.PROMOTED, ALL_CANARY, "monitoring window is still open"),
    (("start", "promote", "watched"), RolloutPhase.PROMOTED, ALL_CANARY,
     "records rollout .* as promoted and not finalized: finalize it without `unrecorded`"),
], ids=["partial-weight", "progressing-record", "window-open", "recorded-promotion"])
def test_unrecorded_refuses_before_any_write(aws, every_call, history, phase, weights, refusal):
    env, _, _ = promote_by_hand(aws, *history, phase=phase or RolloutPhase.PROMOTED)
    env.router.set_weights(weights)
    blocks = saved_blocks(aws)
    state, record = read_back(aws), ledger_of(aws)
    calls = [every_call(s) for s in SERVICES]
    with pytest.raises(FinalizeRefused, match=refusal) as refused:
        finalize_flow(blocks, unrecorded=True)
    assert "Nothing was changed" in str(refused.value)
    assert writes(*calls) == []
    assert (read_back(aws), ledger_of(aws)) == (state, record)


# --- The next rollout's advice ------------------------------------------------------------------


@pytest.mark.parametrize(("history", "weights", "advice"), [
    # `rollway abort` finds no rollout the ledger does not record: the rollback flow rolls it back.
    ((), ALL_CANARY, f"probably a promotion by the `canary` flow.*{UNRECORDED}.*roll it back with the `rollback` flow"),
    # A recorded rollout finalized earlier says nothing about the 100% the canary carries now.
    (("start", "promote", "watched", "finalize-start", "finalized"), ALL_CANARY,
     f"probably a promotion by the `canary` flow.*{UNRECORDED}"),
    # No rollout of the ledger's under way: abort would refuse, the rollback flow does not.
    ((), Weights.canary_at(25), "carries 25% of traffic and the ledger records no rollout.*otherwise roll it back with "
                                "the `rollback` flow"),
], ids=["no-record", "finalized-record", "partial"])
def test_preflight_says_how_to_finish_a_promotion_the_ledger_does_not_record(aws, history, weights, advice):
    env, _, _ = promote_by_hand(aws, *history)
    env.router.set_weights(weights)
    with pytest.raises(RolloutRefused, match=advice):
        preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:2.1.0"))


def test_rollway_finalize_unrecorded_prints_each_step(aws, capsys):
    from rollway.cli import app

    blocks = saved_blocks(aws)
    promote_by_hand(aws)  # what a `canary` flow promotion leaves: nothing in the ledger
    options = ["--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 1
    assert "--unrecorded" in capsys.readouterr().err
    assert app(["finalize", "--unrecorded", *options], result_action="return_value") == 0
    out = capsys.readouterr().out
    assert "traffic moved: the load balancer holds 100/0" in out
    assert "finalized the promotion the ledger does not record" in out and "the next rollout can start" in out
    assert read_back(aws)[0] == ALL_STABLE
