"""The flow tests on the embedded AWS read the simulator's metrics whatever the machine's load.

At SPEED a simulated period is half a wall second. On a busy machine (CI: three pytest workers
on two cores) the simulator's thread fell more than a period behind the rollout clock, a judge
tick read settled periods that held nothing yet, and a test's verdict changed. Here the
simulator's publishing is made slow on purpose, as load makes it.
"""

from __future__ import annotations

import math
import time

from rollway.model import Weights
from tests.botocore_events import on_operation
from tests.flows.moto_env import SPEED, simulated

PERIOD = 60.0
LOOKED = 3 * PERIOD


def test_every_period_the_clock_has_passed_is_published_when_the_simulator_lags(aws):
    """Each period's PutMetricData takes one and a half periods of wall time, as a starved thread would."""
    with simulated(aws, canary_error_rate=0.001) as (env, _):
        assert env.router.get_weights() == Weights(stable=100, canary=0)
        began = env.clock.now()
        with on_operation(aws.get_client("cloudwatch"), "before-call",
                          lambda **_: time.sleep(1.5 * PERIOD / SPEED), operation="PutMetricData"):
            env.clock.sleep(LOOKED + PERIOD)
            now = env.clock.now()
            last_end = math.floor(now / PERIOD) * PERIOD
            seen = env.metrics.observe(last_end - LOOKED, now)
    assert now - began >= LOOKED + PERIOD and len(seen.intervals) == LOOKED / PERIOD, seen
    missing = [i.t for i in seen.intervals if i.baseline is None or not i.baseline.requests]
    assert missing == [], f"periods the rollout clock had passed read as no data: {missing}"
