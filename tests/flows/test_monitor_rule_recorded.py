"""A monitoring window's rollback (the `monitor` flow's, a resumed rollout's window) moves the traffic over
the rule the rollout recorded, on the embedded AWS load balancer, and never over another service's rule
left on the same path.

The window's own lookups find the rule by listener and path alone, and its rollback moved the traffic
over whatever they found: another service's rule on the path (forwarding to its own group and this
stable one) was written over, its group dropped and its users sent to this stable group.
"""
from __future__ import annotations

import pytest

from flows.monitor import monitor
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.errors import TargetNotFound
from rollway.fakes import FakeLedger, FakeMetrics, FakeRouter, steady
from rollway.ledger import RolloutRecord, Transition, new_rollout_id
from rollway.model import ShiftedRule, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, rollout_flows_see
from tests.flows.test_rollback_move_resent import CANARY_TD, left_on_the_path, on_moto

IMAGE = "webordinary/edit-container:2.0.0"
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5), Stage(weight=100)], monitor_seconds=600)


@pytest.mark.parametrize("recorded", [True, False], ids=["recorded", "older ledger"])
def test_a_monitoring_windows_rollback_writes_nothing_over_another_services_rule_on_its_path(
        aws, monkeypatch, watch_calls, recorded):
    env, elbv2 = on_moto(aws)
    env.router = AlbRouter(elbv2, aws.targets)  # the `monitor` flow's, looking everything up afresh
    env.ledger = FakeLedger()
    # The promoted canary fails 8 % of its requests: the window's first looks roll it back.
    env.metrics = FakeMetrics(FakeRouter(Weights(stable=0, canary=100)), steady(5000, 0.001, 0.08))
    rollout_flows_see(monkeypatch, env)
    t, now = aws.topology, env.clock.now()
    rule = ShiftedRule(rule_arn=t.rule_arn, stable_arn=t.stable_target_group_arn, canary_arn=t.canary_target_group_arn)
    env.ledger.create(RolloutRecord(
        service=aws.targets.canary_service, rollout_id=new_rollout_id(now), image=IMAGE,
        spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROMOTED, weights=Weights(stable=0, canary=100),
        canary_task_definition=CANARY_TD, previous_task_definition=STABLE_TD, stable_desired=1,
        monitor_until=now + SPEC.monitor_seconds,
        history=tuple(Transition(at=now, kind=kind, actor="test") for kind in ("start", "promote")),
        **({"shifted_rule": rule} if recorded else {})), owner="run-0", now=now, lease_seconds=0)
    env.ledger.release(aws.targets.canary_service, owner="run-0")
    other = left_on_the_path(aws, elbv2, "another service's")
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    calls = watch_calls(elbv2)
    with pytest.raises(TargetNotFound) as refused:
        monitor(spec=SPEC.model_dump(mode="json"), window_seconds=600)
    assert calls.count("ModifyRule") == 0, calls
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before, "another service's users moved"
    said = str(refused.value)
    assert f"({other}), which forwards to " in said and "it is not the rollout's rule" in said, said
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback FAILED") and other in body, (subject, body)
