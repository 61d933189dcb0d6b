"""A shift or a pointing whose answer was lost when its process died is taken into account by a
resume, or a rollback, in a new process (on the embedded AWS, the ledger in its DynamoDB table).

What a run knows of a write whose answer was lost (tasks/undoable's ``_Write``, the read-back of
flows/engine.set_and_verify) lives in its process only, and the ledger keeps none of it. Nothing is
lost all the same: a resume reads the load balancer's weights before it acts (flows/progressive's
``reconcile``) and records a shift it finds there, reads the canary's revision before deploying
(``deploy_canary``) and records the one it finds of the rollout's image, and a rollback reads the weights and the canary's
revision from AWS and moves both back whatever the ledger says. These tests build the second
process's whole object graph anew (clients, ledger, router, deployer) and let it go on from what the
first one left on AWS and in the table.
"""
from __future__ import annotations

import math
import time

import pytest
from prefect import flow

from blocks.credentials import client_factory, credentials_for_endpoint
from flows.progressive import run_progressive
import flows.rollback
from rollway.approvals import auto_approve
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.sim.topology import put_release_image
from rollway.sim.traffic import TrafficSimulator
from rollway.spec import RolloutSpec, Stage
from tests.botocore_events import on_operation
from tests.flows.moto_env import HEALTHY, SPEED, paced_environment
from tests.flows.test_canary_moto import read_back


class ProcessDied(BaseException):
    """The process stopped right there: nothing after it in the run happens (no except, no hook)."""


def spec(image: str) -> RolloutSpec:
    return RolloutSpec(image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
                       monitor_seconds=0)


@flow
def progressive(env, spec, owner):
    return run_progressive(env, spec, auto_approve("alice"), owner=owner, phased=False, lease_seconds=1.0)


def process(aws, image: str, settings: ClockSettings):
    """A new process's object graph: clients of its own (no handler of the first process's on them),
    and the ledger, router and deployer built on them."""
    get_client = client_factory(credentials_for_endpoint(aws.endpoint_url, aws.targets.region))
    simulator = TrafficSimulator(get_client, aws.targets, aws.topology, settings.build(),
                                 profiles={image: HEALTHY}, default_profile=HEALTHY, total_rps=1000.0, seed=3,
                                 start=math.floor(settings.build().now() / 60) * 60)
    return get_client, simulator


def first_process_dies_as_the_shift_loses_its_answer(aws) -> tuple[str, ClockSettings]:
    """Run a rollout until its ModifyRule to 5 % lands on the load balancer; the process dies as
    the answer comes back. Returns the image and the clock the rollout runs on."""
    settings = ClockSettings(speed=SPEED, anchor=time.time())
    image = put_release_image(aws.get_client, aws.targets, "2.0.0")
    get_client, simulator = process(aws, image, settings)

    def dies(**_):
        raise ProcessDied

    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator, \
            on_operation(get_client("elbv2"), "after-call", dies, operation="ModifyRule"), \
            pytest.raises(ProcessDied):
        progressive(env, spec(image), "process/first")
    record = env.ledger.get(aws.targets.canary_service)
    # What the dead run knew of its write is gone with it: the ledger still says 0 %.
    assert record.weights == Weights(stable=100, canary=0) and record.stage_index == -1, record.history
    assert read_back(aws)[0] == Weights.canary_at(5)
    time.sleep(1.1)  # its lease (1 s on the wall clock) lapses
    return image, settings


def test_a_resume_in_a_new_process_records_the_shift_whose_answer_was_lost_and_does_not_repeat_it(aws, watch_calls):
    image, settings = first_process_dies_as_the_shift_loses_its_answer(aws)
    get_client, simulator = process(aws, image, settings)
    calls = watch_calls(get_client("elbv2"))

    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator:
        result = progressive(env, spec(image), "process/second")

    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(aws.targets.canary_service)
    found = [t for t in record.history if t.kind == "shift" and t.actor == "reconcile"]
    assert [t.to_weights for t in found] == [Weights.canary_at(5)], record.history
    assert found[0].comment == "shift found on the load balancer but not in the ledger"
    # The 5 % shift is not sent again: the second process's only ModifyRule is the move to 100 %.
    assert calls.count("ModifyRule") == 1, calls


def test_a_rollback_in_a_new_process_takes_the_traffic_of_the_shift_whose_answer_was_lost_back(aws, monkeypatch):
    image, settings = first_process_dies_as_the_shift_loses_its_answer(aws)
    get_client, _ = process(aws, image, settings)
    # The rollout's clock, not paced on a simulator: a rollback reads no metrics.
    env = aws_environment(get_client, aws.targets, settings.build())
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    record = env.ledger.get(aws.targets.canary_service)
    assert record.canary_task_definition is not None  # the dead run had deployed the canary

    result = flows.rollback.rollback(reason="the first process died")

    weights, _, canary = read_back(aws)
    assert result.weights == weights == Weights(stable=100, canary=0)
    assert canary.task_definition == record.previous_task_definition and canary.desired == 0
    assert env.ledger.get(aws.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


def test_a_resume_in_a_new_process_records_the_pointing_whose_answer_was_lost_and_registers_no_second_revision(aws):
    settings = ClockSettings(speed=SPEED, anchor=time.time())
    image = put_release_image(aws.get_client, aws.targets, "2.0.0")
    get_client, simulator = process(aws, image, settings)
    family = aws.targets.task_family

    pointing: list[bool] = []

    def sent(params, **_):  # the canary's pointing at the new revision, not a scaling
        pointing.append("taskDefinition" in params)

    def dies(**_):
        if pointing[-1]:
            raise ProcessDied

    ecs = get_client("ecs")
    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator, \
            on_operation(ecs, "before-parameter-build", sent, operation="UpdateService"), \
            on_operation(ecs, "after-call", dies, operation="UpdateService"), pytest.raises(ProcessDied):
        progressive(env, spec(image), "process/first")
    assert env.ledger.get(aws.targets.canary_service).canary_task_definition is None
    pointed = read_back(aws)[2].task_definition
    registered = aws.get_client("ecs").list_task_definitions(familyPrefix=family)["taskDefinitionArns"]
    time.sleep(1.1)  # its lease (1 s on the wall clock) lapses

    get_client, simulator = process(aws, image, settings)
    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator:
        result = progressive(env, spec(image), "process/second")

    assert result.outcome == "promoted", result.reason
    assert env.ledger.get(aws.targets.canary_service).canary_task_definition == pointed
    assert aws.get_client("ecs").list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == registered
