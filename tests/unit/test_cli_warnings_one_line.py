"""A command's warnings quote a third party's error on one line, as its errors do.

botocore's ParamValidationError is several lines ("Parameter validation failed:\\nInvalid type
for parameter ..."); quoted raw in a warning, its lines began lines of their own on the terminal
after "could not read the load balancer back (", and AWS's words came unescaped.
"""

from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import ParamValidationError

import flows.rollback
import rollway.cli.ops as ops
from rollway.ledger import RolloutRecord
from rollway.model import Weights
from rollway.phases import RolloutPhase

REPORT = "Invalid type for parameter ListenerArn, value: None\nInvalid length for parameter RuleArn, value: 0"


def a_service() -> ops.Service:
    targets = SimpleNamespace(canary_service="svc-canary", stable_service="svc", load_balancer="lb")
    return ops.Service(targets=targets, targets_block=None, credentials_block=None, ledger=None, router=None,
                       deployer=object())


def refused(*args, **kwargs):
    raise ParamValidationError(report=REPORT)


def test_a_load_balancer_read_back_botocore_refused_is_warned_of_on_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(ops, "live_weights", refused)
    assert ops.say_live(a_service()) is None
    err = capsys.readouterr().err
    assert "could not read the load balancer back (Parameter validation failed: Invalid type for parameter " \
           "ListenerArn, value: None Invalid length for parameter RuleArn, value: 0); `rollway status` shows it" \
           in err.split("\n", 1)[0], err


def test_a_revision_ecs_could_not_be_asked_for_is_warned_of_on_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(flows.rollback, "no_revision_to_restore", refused)
    record = RolloutRecord(service="svc-canary", rollout_id="20261129T063000Z-1a2b3c4d", image="repo/app:2.0.0",
                           spec_json="{}", phase=RolloutPhase.ROLLING_BACK, weights=Weights.canary_at(5))
    assert ops.no_revision_to_restore(a_service(), record) is None
    err = capsys.readouterr().err
    first = err.split("\n", 1)[0]
    assert "could not read from ECS which revision a rollback would restore (Parameter validation failed: Invalid " \
           "type for parameter ListenerArn, value: None Invalid length for parameter RuleArn, value: 0)" in first, err
