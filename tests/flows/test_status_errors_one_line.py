"""`rollway status` quotes a read of the load balancer or ECS it could not make on one line, escaped,
as its warnings and errors do.

botocore's ParamValidationError is several lines ("Parameter validation failed:\\nInvalid type for
parameter ..."). With no rollout recorded (a first status after `rollway up`), the "weights" and
"users get" rows printed it raw: its lines began lines of their own, read as rows of the table
(on moto, through the saved blocks).
"""
from __future__ import annotations

import pytest
from botocore.exceptions import ParamValidationError

import rollway.cli.ops as ops
from rollway.aws.ecs import EcsDeployer
from tests.flows.moto_env import saved_blocks

REPORT = "Invalid type for parameter ListenerArn, value: None\nInvalid length for parameter RuleArn, value: 0"
SAID = ("Parameter validation failed: Invalid type for parameter ListenerArn, value: None Invalid length for "
        "parameter RuleArn, value: 0")


def refused(*args, **kwargs):
    raise ParamValidationError(report=REPORT)


@pytest.mark.parametrize("where,name,row", [
    (ops, "live_weights", "weights      load balancer unreadable ({}) (stable/canary)"),
    (EcsDeployer, "image_of", "users get    unreadable from ECS ({})"),
], ids=["load-balancer", "ecs"])
def test_status_with_no_rollout_says_a_read_botocore_refused_on_one_line(aws, capsys, monkeypatch, where, name, row):
    blocks = saved_blocks(aws, "one-line")
    monkeypatch.setattr(where, name, refused)
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = capsys.readouterr().out
    assert f"\n{row.format(SAID)}\n" in out, out
