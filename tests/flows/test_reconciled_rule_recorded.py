"""A resumed run that finds its dead run's shift on the load balancer records it (``reconcile``) with the
rule it found it on, as the deploy and each shift record theirs: a later rollback of that rollout moves
the traffic over that rule by ARN. Recorded without it (a rollout an older ledger began), the rollback
looked the rule up afresh by path, and another rule on that path naming the canary group too failed it,
the users left on the canary."""
from __future__ import annotations

import pytest
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


def moved_off_the_path(aws, elbv2) -> tuple[str, str]:
    """The rollout's rule as a person left it: moved to another path ('/old/*'), still forwarding to the
    two groups at 25 % canary, and a new rule put on the rollout's path in its place, at the same
    weights. Returns the old rule's ARN (the one the ledger recorded) and the new one's."""
    old = aws.topology.rule_arn
    rule = elbv2.describe_rules(RuleArns=[old])["Rules"][0]
    elbv2.modify_rule(RuleArn=old, Conditions=[{"Field": "path-pattern", "PathPatternConfig": {"Values": ["/old/*"]}}])
    new = elbv2.create_rule(ListenerArn=aws.topology.listener_arn, Priority=int(rule["Priority"]) + 1,
                            Conditions=rule["Conditions"], Actions=rule["Actions"])["Rules"][0]["RuleArn"]
    return old, new


@pytest.mark.parametrize("shift_found", [False, True], ids=["recorded weights", "unrecorded shift"])
def test_a_resumed_run_finding_the_weights_on_another_rule_than_recorded_records_that_one_and_says_so(
        aws, monkeypatch, shift_found):
    """The ledger recorded a rule that no longer carries the rollout's path: the resume read the weights
    on the rule that does, and kept the recorded one, which only an older ledger's lack of any replaced.
    Until the next shift, a rollback moved the traffic over the old rule, and the users on the path were
    left on the canary. The rule found is recorded, in an entry that says which replaced which: the
    resume's own, or the entry of the dead run's shift it found, which recorded the rule silently."""
    env, elbv2 = on_moto(aws)  # the load balancer at 25 % canary: as recorded, or the dead run's shift
    env.ledger = FakeLedger()
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    old, new = moved_off_the_path(aws, elbv2)
    recorded = AlbRouter(elbv2, aws.targets).shifted_rule().model_copy(update={"rule_arn": old})
    env.router = AlbRouter(elbv2, aws.targets)
    start = env.clock.now()
    record = env.ledger.create(RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(start - 50),
                                             image=IMAGE, spec_json=SPEC.model_dump_json(),
                                             **({} if shift_found else {"stage_index": 0, "weights": ON_CANARY}),
                                             shifted_rule=recorded),
                               owner="run-2", now=start - 50, lease_seconds=600)
    reconciled = resumed_run(env, record)
    assert reconciled.shifted_rule == recorded.model_copy(update={"rule_arn": new}), \
        reconciled.shifted_rule
    said = reconciled.history[-1]
    assert said.actor == "reconcile" and said.comment == (
        ("shift found on the load balancer but not in the ledger; " if shift_found else "") +
        f"the load balancer holds the traffic's weights on rule {new}, not on the rule the ledger "
        f"recorded ({old}): that one is recorded now, and a rollback moves the traffic over it"), said
    assert (reconciled.weights, reconciled.stage_index) == (ON_CANARY, 0)
    result = roll_back("abort", env, reconciled)
    assert result.weights == ALL_STABLE, result
    # The users on the path are back on stable; the old rule, on another path now, is left as it was.
    assert AlbRouter(elbv2, aws.targets).get_weights() == ALL_STABLE
    assert AlbRouter(elbv2, aws.targets).rolling_back(recorded).get_weights() == ON_CANARY
