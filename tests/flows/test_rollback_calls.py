"""The AWS calls a rollback makes before the load balancer reads back 100 % stable, on the embedded
AWS: each one is time users spend on the version being rolled back.

The rollback read the rule once for the weights it moves the traffic from, then its write read the
rule again for the actions to write back: two DescribeRules before the ModifyRule. The write's own
read now gives those weights back (``TrafficRouter.set_weights``).
"""
from __future__ import annotations

import pytest
from botocore.client import BaseClient
from prefect import flow

from flows.rollback import execute_rollback
from rollway.aws.environment import aws_environment
from rollway.clock import ClockSettings
from rollway.model import Weights

ON_CANARY, ALL_STABLE = Weights.canary_at(25), Weights(stable=100, canary=0)


@flow
def rollback_run(env):
    return execute_rollback(env, "error rate 7%", actor="judge")


@pytest.fixture
def calls_in_order(monkeypatch) -> list[str]:
    """The operation names every botocore client of this process calls, of every service, in order."""
    real = BaseClient._make_api_call
    made: list[str] = []

    def recorded(client, operation_name, api_params):
        made.append(operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
    return made


def on_canary(aws):
    """The environment on the embedded AWS with the canary at 25 %, the stable service at capacity
    and a target registered in each group; its lookups made, as a run's are when it rolls back."""
    env = aws_environment(aws.get_client, aws.targets, ClockSettings().build())
    elbv2 = aws.get_client("elbv2")
    for arn, ip in ((env.router.stable_target_group_arn, "10.0.1.9"), (env.router.canary_target_group_arn, "10.0.1.10")):
        elbv2.register_targets(TargetGroupArn=arn, Targets=[{"Id": ip, "Port": 8080}])
    env.router.set_weights(ON_CANARY)
    return env


def test_a_rollback_reads_the_rule_once_before_its_write(aws, calls_in_order):
    env = on_canary(aws)
    calls_in_order.clear()

    result = rollback_run(env)

    modify = calls_in_order.index("ModifyRule")
    before = calls_in_order[:calls_in_order.index("DescribeRules", modify) + 1]
    assert before == ["DescribeServices", "DescribeServices", "DescribeTargetHealth", "DescribeRules", "ModifyRule",
                      "DescribeRules"], before
    assert (result.weights_before, result.weights) == (ON_CANARY, ALL_STABLE), result
