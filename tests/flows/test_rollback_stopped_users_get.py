"""What users get while a rollback that stopped part-way is open, on the embedded AWS.

The stopped rollback read the weights back (the traffic on stable, or still on the canary when the
load balancer refused the move) and the ledger keeps them in its ``rollback-stopped`` entry. The
rollout and incident reports said "Users get since the rollback: not recorded" all the same, and
`rollway status` said nothing of the stopped run: a responder could not tell from the ledger
whether users were still on the version being rolled back.
"""
from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError

import flows.rollback
import rollway.cli.ops as ops
from flows.rollback import rollback
from rollway.aws.ecs import EcsDeployer
from rollway.ledger import ROLLBACK_STOPPED, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report, rollout_report
from tests.botocore_events import on_operation
from tests.flows.moto_env import saved_blocks
from tests.flows.test_canary_moto import read_back
from tests.flows.test_rollback_stopped_incident import flat, open_rollout


def refuse_modify_rule(**_):
    raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized to perform "
                                 "elasticloadbalancing:ModifyRule"}}, "ModifyRule")


def users_get_line(report: str) -> str:
    return next(line for line in report.splitlines() if line.startswith("- **Users get since the rollback:**"))


def test_a_rollback_the_load_balancer_refused_says_the_canary_still_takes_its_share(aws, monkeypatch, capsys):
    t = aws.targets
    env = open_rollout(aws)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)

    with on_operation(aws.get_client("elbv2"), "before-call", refuse_modify_rule, operation="ModifyRule"):
        state = rollback(reason="5xx on the canary", return_state=True)

    assert state.is_failed()
    assert read_back(aws)[0] == Weights.canary_at(5)
    record = env.ledger.get(t.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK
    stopped = record.last_transition(ROLLBACK_STOPPED)
    assert stopped is not None and stopped.to_weights == Weights.canary_at(5), record.history
    assert stopped.from_weights == Weights.canary_at(5), stopped  # what it found, and could not move
    said = (f"the canary still takes 5 % (95/5 stable/canary) as read back at {utc(stopped.at)} by the rollback "
            "of operator, which then stopped before it finished: run the rollback again")
    for report in (incident_report(record, alert_topic=t.alert_topic, now=time.time(), targets=t),
                   rollout_report(record, now=time.time())):
        line = flat(users_get_line(report))
        assert "not recorded" not in line, line
        assert said in line, line

    blocks = saved_blocks(aws, "stopped-users")
    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
    out = flat(capsys.readouterr().out)
    assert said in out, out


def test_a_rollback_whose_page_failed_names_what_stable_ran_when_it_took_the_traffic(aws, monkeypatch):
    t = aws.targets
    env = open_rollout(aws)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    stable_runs = EcsDeployer(aws.get_client("ecs"), t).describe(t.stable_service).task_definition
    aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)

    with pytest.raises(flows.rollback.RollbackIncomplete):
        rollback(reason="5xx on the canary")

    record = env.ledger.get(t.canary_service)
    stopped = record.last_transition(ROLLBACK_STOPPED)
    assert stopped is not None and stopped.to_weights == Weights(stable=100, canary=0), record.history
    assert stopped.from_weights == Weights.canary_at(5), stopped  # what it moved the traffic from
    line = flat(users_get_line(incident_report(record, alert_topic=t.alert_topic, now=time.time(), targets=t)))
    assert "not recorded" not in line, line
    assert (f"{stable_runs}, the task definition `{t.stable_service}` ran when the load balancer read back 100/0 "
            f"(stable/canary) at {utc(stopped.at)}, by the rollback of operator, which then stopped before it "
            "finished: run the rollback again") in line, line


def test_a_rollback_stopped_after_the_traffic_moved_leaves_the_rollouts_weights_as_read_back(aws, monkeypatch,
                                                                                             capsys):
    """The rollback moved the traffic to stable, then stopped (its page refused): only its
    ``rollback-stopped`` entry kept the weights read back, the rollout's own stayed at 95/5, and
    `rollway status` showed the rollout at 95/5 beside a load balancer at 100/0."""
    t = aws.targets
    env = open_rollout(aws)
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)

    with pytest.raises(flows.rollback.RollbackIncomplete):
        rollback(reason="5xx on the canary")

    record = env.ledger.get(t.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK
    assert record.weights == Weights(stable=100, canary=0) == read_back(aws)[0], record.weights
    blocks = saved_blocks(aws, "stopped-weights")
    capsys.readouterr()
    ops.status(targets_block=blocks, credentials_block=blocks)
    out = flat(capsys.readouterr().out)
    assert "weights ledger 100/0, load balancer 100/0 (stable/canary)" in out and "drift" not in out, out
