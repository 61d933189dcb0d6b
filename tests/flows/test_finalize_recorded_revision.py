"""finalize moves onto the stable service the revision the ledger recorded as promoted, never
whatever the canary service happens to run now. On the embedded AWS with the Prefect test harness."""

from __future__ import annotations

import pytest

from rollway.aws.ecs import EcsDeployer
from rollway.finalize import FinalizeRefused
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_CANARY, _plan, _record, _state, finalize_on, kinds, promote_by_hand, writes


def test_a_canary_changed_after_the_promotion_is_refused_before_anything_changes(aws, watch_calls):
    """A hotfix (or a manual UpdateService) on the canary after the promotion: finalize used to
    put that unjudged revision on the stable service, silently."""
    env, release, old = promote_by_hand(aws, "start", "promote", "decommission")
    t = aws.targets
    hotfix = EcsDeployer(aws.get_client("ecs"), t).register_revision(f"{aws.topology.repository_uri}:2.0.1", release)
    aws.get_client("ecs").update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=hotfix)
    state, history = read_back(aws), kinds(aws)
    calls = [watch_calls(aws.get_client(s)) for s in ("ecs", "elbv2", "dynamodb", "sns")]

    with pytest.raises(FinalizeRefused) as refused:
        finalize_on(env)
    message = str(refused.value)
    assert f"runs {hotfix}, not the promoted {release}" in message and "Nothing was changed" in message
    assert "\n" not in message, "one line"
    assert writes(*calls) == []
    assert read_back(aws) == state and state[0] == ALL_CANARY and state[1].task_definition == old
    assert kinds(aws) == history


def test_the_canary_pointed_back_at_the_promoted_revision_is_finalized_onto_it(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    t = aws.targets
    ecs = aws.get_client("ecs")
    hotfix = EcsDeployer(ecs, t).register_revision(f"{aws.topology.repository_uri}:2.0.1", release)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=hotfix)
    with pytest.raises(FinalizeRefused):
        finalize_on(env)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=release)  # as the refusal says
    result = finalize_on(env)
    assert result.outcome == "finalized" and result.task_definition == release
    assert read_back(aws)[1].task_definition == release


def test_the_plan_names_the_recorded_revision_and_refuses_another_on_the_canary():
    assert _plan(_record("promote"), ALL_CANARY, _state("app:1", 0), _state("app:2", 3)).task_definition == "app:2"
    with pytest.raises(FinalizeRefused, match="runs app:3, not the promoted app:2"):
        _plan(_record("promote"), ALL_CANARY, _state("app:1", 0), _state("app:3", 3))
