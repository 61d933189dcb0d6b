"""A resumed run that finds its dead run's shift on the load balancer records it (``reconcile``) with the
rule it found it on, as the deploy and each shift record theirs: a later rollback of that rollout moves
the traffic over that rule by ARN. Recorded without it (a rollout an older ledger began), the rollback
looked the rule up afresh by path, and another rule on that path naming the canary group too failed it,
the users left on the canary."""
from __future__ import annotations

from prefect import flow

import flows.rollback
from flows.progressive import reconcile
from rollway.aws.elbv2 import AlbRouter
from rollway.fakes import FakeLedger
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.spec import RolloutSpec, Stage
from tests.flows.test_rollback_move_resent import ALL_STABLE, ON_CANARY, VERIFY_SECONDS, on_moto
from tests.flows.test_rollback_rule_recorded import IMAGE, named_canary_too, roll_back

SPEC = RolloutSpec(image=IMAGE, verify_timeout_seconds=VERIFY_SECONDS, stages=[Stage(weight=ON_CANARY.canary),
                                                                                Stage(weight=100)])


@flow
def resumed_run(env, record):
    return reconcile(env, SPEC, record, owner="run-2", actor="rollway", adopt_live_weights=False, lease_seconds=600)


def test_a_reconciled_rollouts_rollback_moves_the_traffic_over_the_rule_its_resume_found(aws, monkeypatch):
    env, elbv2 = on_moto(aws)  # the load balancer at 25 % canary: the dead run's shift
    env.router, env.ledger = AlbRouter(elbv2, aws.targets), FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    start = env.clock.now()
    service = aws.targets.canary_service
    # The rollout as its dead run left it: begun, no shift recorded (an older ledger kept no rule).
    record = env.ledger.create(RolloutRecord(service=service, rollout_id=new_rollout_id(start - 50), image=IMAGE,
                                             spec_json=SPEC.model_dump_json()),
                               owner="run-2", now=start - 50, lease_seconds=600)
    reconciled = resumed_run(env, record)
    assert reconciled.stage_index == 0 and reconciled.weights == ON_CANARY, reconciled
    assert reconciled.shifted_rule is not None and reconciled.shifted_rule.rule_arn == aws.topology.rule_arn, \
        reconciled.shifted_rule
    other = named_canary_too(aws, elbv2)
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    result = roll_back("abort", env, reconciled)
    assert result.weights == ALL_STABLE, result
    assert AlbRouter(elbv2, aws.targets).rolling_back(reconciled.shifted_rule).get_weights() == ALL_STABLE
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before


def test_a_resumed_run_finding_the_recorded_weights_records_the_rule_an_older_ledger_lacks(aws, monkeypatch):
    """The load balancer holds the weights the ledger records, and an older ledger recorded no rule with
    them: the resume wrote nothing, and until the next shift (hours away in a stage's bake) a rollback
    looked the rule up afresh by path, where another rule naming the canary group too failed it, the
    users left on the canary. The rule is recorded, and nothing else: no entry, the lease as it was."""
    env, elbv2 = on_moto(aws)  # the load balancer at 25 % canary, as the ledger records
    env.router, env.ledger = AlbRouter(elbv2, aws.targets), FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    start = env.clock.now()
    record = env.ledger.create(RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(start - 50),
                                             image=IMAGE, spec_json=SPEC.model_dump_json(), stage_index=0,
                                             weights=ON_CANARY),
                               owner="run-2", now=start - 50, lease_seconds=600)
    assert record.shifted_rule is None
    reconciled = resumed_run(env, record)
    assert reconciled.shifted_rule is not None and reconciled.shifted_rule.rule_arn == aws.topology.rule_arn, \
        reconciled.shifted_rule
    stored = env.ledger.get(aws.targets.canary_service)
    assert stored.shifted_rule == reconciled.shifted_rule
    assert (stored.history, stored.lease_expires, stored.weights, stored.stage_index) == (
        record.history, record.lease_expires, record.weights, record.stage_index)
    other = named_canary_too(aws, elbv2)
    before = elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"]
    result = roll_back("abort", env, reconciled)
    assert result.weights == ALL_STABLE, result
    assert elbv2.describe_rules(RuleArns=[other])["Rules"][0]["Actions"] == before
