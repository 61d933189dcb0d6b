"""deployments/iam-policy.json allows every AWS call a rollout makes, and nothing it never makes.

A progressive rollout with a bound flag is promoted, watched and its old service
decommissioned, then rolled back by hand, on the embedded AWS; every call its clients make is
mapped to the IAM action AWS checks for it, and the resource it checks it on. moto does not
enforce IAM, so this test is what keeps the documented least-privilege policy in step with the
code.
"""

from __future__ import annotations

import math
import time

from prefect import flow

from blocks.credentials import client_factory, credentials_for_endpoint
from flows.progressive import run_progressive
from flows.rollback import rollback_recorded
from rollway.approvals import auto_approve
from rollway.clock import ClockSettings
from rollway.flags import FlagState
from rollway.sim.topology import put_release_image
from rollway.sim.traffic import TrafficSimulator
from rollway.spec import FlagBinding, RolloutSpec, Stage, WeeklyPhase
from tests.flows.iam import allowed, denied, recording, scopable_wildcards, unused_grants
from tests.flows.moto_env import HEALTHY, SPEED, paced_environment

POLICY = "iam-policy.json"


@flow
def rollout_then_rollback(env, spec):
    result = run_progressive(env, spec, auto_approve("alice"), owner="run-1", phased=False)
    rollback_recorded(env, "rolled back by hand after the promotion", actor="oncall")
    return result


def test_the_documented_policy_allows_every_call_a_rollout_makes(aws):
    used: set[str] = set()
    requests: list = []
    # The rollout's own clients, not shared with the simulator (whose writes are not rollway's):
    # prefect-aws caches clients by credentials, so these get a key of their own.
    embedded = credentials_for_endpoint(aws.endpoint_url, aws.targets.region)
    get_client = recording(client_factory(embedded.model_copy(update={"aws_access_key_id": "rollway-iam-test"})), used,
                           requests, aws.targets.region)

    settings = ClockSettings(speed=SPEED, anchor=time.time())
    image = put_release_image(aws.get_client, aws.targets, "2.0.0")
    spec = RolloutSpec(
        image=image, stages=[Stage(weight=w, bake_seconds=900, min_bake_seconds=120) for w in (5, 100)],
        flags=[FlagBinding(feature="use_sqs_architecture")], monitor_seconds=180,
        phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)],
    )
    simulator = TrafficSimulator(aws.get_client, aws.targets, aws.topology, settings.build(), profiles={},
                                 default_profile=HEALTHY, total_rps=1000, seed=3,
                                 start=math.floor(settings.build().now() / 60) * 60)
    # Paced: a simulator fallen behind under load left periods without data, and the rollout
    # then made other calls than an idle machine's.
    with paced_environment(get_client, aws.targets, settings, simulator) as env, simulator:
        env.flags.put(FlagState(feature="use_sqs_architecture"), expected_version=0, actor="test",
                      now=settings.build().now())
        result = rollout_then_rollback(env, spec)
    assert result.outcome == "promoted", result.reason

    missing = used - allowed(POLICY)
    assert not missing, f"calls the documented IAM policy does not allow: {sorted(missing)}"
    # ... on the resources they act on (a grant scoped to another ARN is AccessDenied all the same).
    assert not denied(POLICY, requests), f"calls the policy does not allow on their resources: {denied(POLICY, requests)}"
    # Nothing granted on "*" that the calls made of it name the resources of: DescribeServices on
    # "*" read every service of the account, where a rollout reads its two.
    assert not scopable_wildcards(POLICY, requests), (
        f"granted on every resource, though each call names its own: {scopable_wildcards(POLICY, requests)}")
    # Nothing granted that no call needs. Not on this path: a revision whose task has roles
    # (PassRole), a later rollout of the same service (the ledger's check of the newest one),
    # `rollway flags list` (Scan), undoing a deploy whose UpdateService failed, a rule with
    # target-group stickiness (AddTags and RemoveTags remember it; the embedded rule has none), a
    # registration whose answer was lost (ListTaskDefinitions finds the revision it made).
    other_paths = {"iam:PassRole", "dynamodb:ConditionCheckItem", "dynamodb:Scan", "ecs:DeregisterTaskDefinition",
                   "ecs:ListTaskDefinitions",
                   "elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"}
    unused = allowed(POLICY) - used - other_paths
    assert not unused, f"the policy grants actions rollway never uses: {sorted(unused)}"
    # ... nor on resources it never uses them on (the ledger is never scanned, the flags never queried).
    # Not on this path either: a create whose transaction lost a race reads the ledger's pointer.
    # Nor a rollout of an image in a shared-services registry (another account's or region's ECR).
    other_grants = {("dynamodb:GetItem", "arn:aws:dynamodb:us-west-2:ACCOUNT_ID:table/webordinary-rollouts"),
                    ("ecr:DescribeImages",
                     "arn:aws:ecr:REGISTRY_REGION:REGISTRY_ACCOUNT:repository/webordinary/edit-container")}
    unused_here = [grant for grant in unused_grants(POLICY, requests)
                   if grant[0] not in other_paths and grant not in other_grants]
    assert not unused_here, f"the policy grants actions on resources rollway never uses them on: {unused_here}"
