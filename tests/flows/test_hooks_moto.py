"""A canary run that fails mid-rollout is rolled back by its on_failure hook, on the embedded AWS."""

from __future__ import annotations

import gc

import pytest

from blocks.credentials import credentials_for_endpoint
from flows.canary import canary
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import inbox, received_subjects, simulated
from tests.flows.test_canary_moto import read_back


@pytest.fixture
def no_gc_callbacks():
    """Prefect raises a flow's timeout into the running thread asynchronously. When it lands
    while a gc callback runs (hypothesis installs one, in a worker that ran its tests before
    this one), Python ignores it ("Exception ignored in gc_callback") and the run never times
    out: the test then failed one run in many for a reason no user has."""
    saved = list(gc.callbacks)
    gc.callbacks.clear()
    yield
    gc.callbacks.extend(saved)


def test_flow_timeout_mid_stage_rolls_back_through_the_hook(new_account, no_gc_callbacks):
    # Prefect delivers a flow's timeout once, as an exception raised asynchronously into the
    # run's thread; landing inside a weakref callback (a cache entry dying), Python ignores it
    # ("Exception ignored in ... WeakValueDictionary ... CancelledError") and the run carries on
    # to the end. That is Prefect's, and rare; the scenario is then started over on a fresh
    # account, at most three times, so that what is tested is the hook, not the delivery.
    for _attempt in range(3):
        aws = new_account()
        credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("test-embedded", overwrite=True)
        url = inbox(aws)
        with simulated(aws, canary_error_rate=0.001) as (env, image):
            clock = env.clock
            settings = {"speed": clock.speed, "anchor": clock.anchor}
            spec = RolloutSpec(image=image, stages=[Stage(weight=5, bake_seconds=3600), Stage(weight=100)])
            # The bake outlasts the run's timeout: the run fails at 5% with traffic on the canary.
            try:
                canary.with_options(timeout_seconds=4)(spec=spec, aws_credentials_block="test-embedded",
                                                       clock=settings)
            except Exception:  # noqa: BLE001 - the timeout, as Prefect raises it
                break
    else:
        pytest.fail("Prefect lost the run's timeout three times in a row: the hook was never exercised")
    weights, stable, canary_service = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary_service.desired == 0 and canary_service.task_definition == stable.task_definition
    subjects = received_subjects(aws, url)
    assert any(s.startswith("Rollback") for s in subjects), subjects
