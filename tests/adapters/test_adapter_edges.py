"""Adapter edges found in review: the ALB rule's stickiness, relative weights and which rule
is shifted, ECS not-found errors that name what was missing, the region clients act in, and a run whose
blocks cannot be loaded.
"""

from __future__ import annotations

import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import SecretStr

from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter, _forward_weights
from rollway.aws.errors import AdapterError, TargetNotFound
from rollway.model import Weights


def _forward(aws, stable: int, canary: int, **extra) -> dict:
    top = aws.topology
    return {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": top.stable_target_group_arn, "Weight": stable},
                {"TargetGroupArn": top.canary_target_group_arn, "Weight": canary},
            ],
            **extra,
        },
    }


def _rule_forward_config(aws) -> dict:
    rule = aws.get_client("elbv2").describe_rules(RuleArns=[aws.topology.rule_arn])["Rules"][0]
    return next(a for a in rule["Actions"] if a["Type"] == "forward")["ForwardConfig"]


# --- elbv2: the read-modify-write of the rule -------------------------------------------


def test_a_shift_keeps_the_rules_target_group_stickiness(aws):
    """A rule with group-level stickiness (sessions pinned to one version for an hour, which a
    multi-session editor needs) keeps it while both versions serve; once one version is at
    0 % it is off, so that 0 % means no requests (a rollback moves every user at once)."""
    sticky = {"Enabled": True, "DurationSeconds": 3600}
    elbv2 = aws.get_client("elbv2")
    elbv2.modify_rule(
        RuleArn=aws.topology.rule_arn,
        Actions=[_forward(aws, 100, 0, TargetGroupStickinessConfig=sticky)],
    )
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(5))
    forward = _rule_forward_config(aws)
    assert {g["Weight"] for g in forward["TargetGroups"]} == {95, 5}
    assert forward.get("TargetGroupStickinessConfig") == sticky
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(50))
    assert _rule_forward_config(aws).get("TargetGroupStickinessConfig") == sticky
    AlbRouter(elbv2, aws.targets).set_weights(Weights(stable=100, canary=0))
    assert _rule_forward_config(aws)["TargetGroupStickinessConfig"]["Enabled"] is False


@pytest.mark.parametrize("ended", [Weights(stable=100, canary=0), Weights(stable=0, canary=100)],
                         ids=["rolled-back", "promoted"])
def test_stickiness_comes_back_with_the_next_rollout(aws, ended):
    """The shift to 0 % that ends a rollout turns stickiness off; the next rollout's first split
    (a new run, a new router) turns the operator's setting back on, from a tag on the rule."""
    sticky = {"Enabled": True, "DurationSeconds": 3600}
    elbv2 = aws.get_client("elbv2")
    elbv2.modify_rule(RuleArn=aws.topology.rule_arn, Actions=[_forward(aws, 100, 0, TargetGroupStickinessConfig=sticky)])
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(5))
    AlbRouter(elbv2, aws.targets).set_weights(ended)
    assert _rule_forward_config(aws)["TargetGroupStickinessConfig"]["Enabled"] is False
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(5))
    assert _rule_forward_config(aws).get("TargetGroupStickinessConfig") == sticky


def test_stickiness_turned_off_while_both_versions_serve_stays_off(aws):
    """Stickiness off at a split is the operator's choice: the tag goes, and the next rollout
    does not turn it back on."""
    sticky = {"Enabled": True, "DurationSeconds": 3600}
    elbv2, arn = aws.get_client("elbv2"), aws.topology.rule_arn
    elbv2.modify_rule(RuleArn=arn, Actions=[_forward(aws, 100, 0, TargetGroupStickinessConfig=sticky)])
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(5))
    elbv2.modify_rule(RuleArn=arn, Actions=[_forward(aws, 95, 5, TargetGroupStickinessConfig={"Enabled": False})])
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(25))
    assert elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"][0]["Tags"] == []
    AlbRouter(elbv2, aws.targets).set_weights(Weights(stable=100, canary=0))
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(5))
    assert _rule_forward_config(aws)["TargetGroupStickinessConfig"]["Enabled"] is False


@pytest.mark.parametrize(
    ("weights", "expected"),
    [
        # A forward shift tags the stickiness before its ModifyRule.
        (Weights.canary_at(25), ["DescribeRules", "AddTags", "ModifyRule"]),
        # A rollback or a promotion is in a hurry: ModifyRule is its first write.
        (Weights(stable=100, canary=0), ["DescribeRules", "ModifyRule"]),
        (Weights(stable=0, canary=100), ["DescribeRules", "ModifyRule"]),
    ],
)
def test_remembering_stickiness_costs_a_rollback_no_call(aws, watch_calls, weights, expected):
    elbv2 = aws.get_client("elbv2")
    sticky = {"Enabled": True, "DurationSeconds": 3600}
    elbv2.modify_rule(RuleArn=aws.topology.rule_arn, Actions=[_forward(aws, 95, 5, TargetGroupStickinessConfig=sticky)])
    router = AlbRouter(elbv2, aws.targets)
    router.resolve()
    calls = watch_calls(elbv2)
    router.set_weights(weights)
    assert calls == expected


# --- elbv2: which rule is shifted -------------------------------------------------------


def _listener_rule(aws, priority: int, path: str, actions: list[dict]) -> str:
    return aws.get_client("elbv2").create_rule(
        ListenerArn=aws.topology.listener_arn, Priority=priority, Actions=actions,
        Conditions=[{"Field": "path-pattern", "Values": [path]}],
    )["Rules"][0]["RuleArn"]


def test_the_rule_on_rule_path_is_shifted_though_another_forwards_to_both(aws):
    """Before the first rollout the rule on rule_path forwards to the stable group alone; an
    admin rule forwarding to both groups at 100/0 is not the one to shift (the canary would be
    judged on /admin traffic)."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    elbv2.modify_rule(RuleArn=top.rule_arn, Actions=[{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}])
    admin = _listener_rule(aws, 5, "/admin/*", [_forward(aws, 100, 0)])
    AlbRouter(elbv2, aws.targets).set_weights(Weights.canary_at(50))
    assert {g["Weight"] for g in _rule_forward_config(aws)["TargetGroups"]} == {50}
    admin_rule = elbv2.describe_rules(RuleArns=[admin])["Rules"][0]
    assert [g["Weight"] for g in admin_rule["Actions"][0]["ForwardConfig"]["TargetGroups"]] == [100, 0]


def test_no_rule_on_rule_path_is_refused_naming_the_rules_found(aws):
    static = _listener_rule(aws, 7, "/static/*", [_forward(aws, 100, 0)])
    router = AlbRouter(aws.get_client("elbv2"), aws.targets.model_copy(update={"rule_path": "/api/*"}))
    with pytest.raises(TargetNotFound) as caught:
        router.resolve()
    message = str(caught.value)
    assert "/api/*" in message
    assert f"/static/* ({static})" in message and f"/* ({aws.topology.rule_arn})" in message


def test_two_rules_on_rule_path_are_refused_naming_both(aws):
    other = _listener_rule(aws, 8, aws.targets.rule_path, [_forward(aws, 100, 0)])
    with pytest.raises(AdapterError) as caught:
        AlbRouter(aws.get_client("elbv2"), aws.targets).resolve()
    assert not isinstance(caught.value, TargetNotFound)
    assert aws.topology.rule_arn in str(caught.value) and other in str(caught.value)


def _host_rule(aws, priority: int, host: str, actions: list[dict]) -> str:
    return aws.get_client("elbv2").create_rule(
        ListenerArn=aws.topology.listener_arn, Priority=priority, Actions=actions,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}},
                    {"Field": "path-pattern", "PathPatternConfig": {"Values": [aws.targets.rule_path]}}],
    )["Rules"][0]["RuleArn"]


def _route_by_host(aws, host: str, actions: list[dict]) -> None:
    aws.get_client("elbv2").modify_rule(
        RuleArn=aws.topology.rule_arn, Actions=actions,
        Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [host]}},
                    {"Field": "path-pattern", "PathPatternConfig": {"Values": [aws.targets.rule_path]}}])


def test_a_listener_routing_by_host_keeps_its_rollouts_rule_mid_rollout(aws):
    """Two rules on `/*`, one per host; the service's forwards to both groups at 90/10, the api
    host's to the stable group alone. Without rule_host the rule naming the canary group is
    the one rollway shifted: the rollback finds it (it used to be refused as ambiguous)."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    _route_by_host(aws, "edit.example.com", [_forward(aws, 90, 10)])
    api = _host_rule(aws, 40, "api.example.com", [{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}])
    router = AlbRouter(elbv2, aws.targets)
    assert router.get_weights() == Weights(stable=90, canary=10)
    router.set_weights(Weights(stable=100, canary=0))
    assert AlbRouter(elbv2, aws.targets).get_weights() == Weights(stable=100, canary=0)
    api_rule = elbv2.describe_rules(RuleArns=[api])["Rules"][0]
    assert api_rule["Actions"][0].get("ForwardConfig", {}).get("TargetGroups", [{}])[0].get(
        "TargetGroupArn", api_rule["Actions"][0].get("TargetGroupArn")) == top.stable_target_group_arn
    assert len(_forward_weights(api_rule)) == 1, "the api host's rule was shifted"


def test_rule_host_names_the_rule_when_hosts_share_a_path_before_the_first_rollout(aws):
    """Before any rollout both hosts' rules forward to the stable group alone: rule_host tells
    them apart, and without it the refusal says to set it."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    stable_only = [{"Type": "forward", "TargetGroupArn": top.stable_target_group_arn}]
    _route_by_host(aws, "edit.example.com", stable_only)
    api = _host_rule(aws, 40, "api.example.com", stable_only)
    with pytest.raises(AdapterError, match="rule_host") as ambiguous:
        AlbRouter(elbv2, aws.targets).resolve()
    assert "edit.example.com /*" in str(ambiguous.value) and "api.example.com /*" in str(ambiguous.value)
    # A load balancer matches hosts without regard to case.
    targets = aws.targets.model_copy(update={"rule_host": "Edit.Example.com"})
    AlbRouter(elbv2, targets).set_weights(Weights.canary_at(5))
    assert AlbRouter(elbv2, targets).get_weights() == Weights.canary_at(5)
    assert len(_forward_weights(elbv2.describe_rules(RuleArns=[api])["Rules"][0])) == 1


def test_a_rule_on_rule_path_with_a_third_group_is_looked_up_and_refused_to_a_rollout_naming_it(aws):
    """A shift would drop the third (shadow) group from the rule: a rollout's read and write refuse
    it, naming the rule and the group. The lookup takes it ("not found" would send the operator
    looking for a typo), so that a rollback run afresh can still move users to stable."""
    top, elbv2 = aws.topology, aws.get_client("elbv2")
    vpc = elbv2.describe_target_groups(TargetGroupArns=[top.stable_target_group_arn])["TargetGroups"][0]["VpcId"]
    shadow = elbv2.create_target_group(Name="webordinary-edit-shadow", Protocol="HTTP", Port=8080, VpcId=vpc,
                                       TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    forward = _forward(aws, 90, 0)
    forward["ForwardConfig"]["TargetGroups"].append({"TargetGroupArn": shadow, "Weight": 10})
    elbv2.modify_rule(RuleArn=top.rule_arn, Actions=[forward])
    router = AlbRouter(elbv2, aws.targets)
    router.resolve()
    assert router.rule_arn == top.rule_arn
    with pytest.raises(AdapterError) as reading:
        router.get_weights()
    assert not isinstance(reading.value, TargetNotFound)
    assert top.rule_arn in str(reading.value) and f"{shadow} (weight 10 of 100)" in str(reading.value)
    with pytest.raises(AdapterError) as writing:
        router.set_weights(Weights.canary_at(5))
    assert str(writing.value) == str(reading.value)


# --- elbv2: reading relative weights ----------------------------------------------------


@pytest.mark.parametrize(
    ("stable", "canary"),
    [
        (1, 999),  # 0.1 % still on the old version: read as 0/100, so the monitor decommissions it
        (999, 1),  # 0.1 % still on the canary: read as 100/0, so a rollback "verifies"
        (199, 1),  # 0.5 % on the canary: round(0.5) == 0
    ],
)
def test_a_group_that_still_gets_traffic_never_reads_as_zero_percent(aws, stable, canary):
    """ALB weights are relative (0..999): a non-zero share never rounds to 0 %.

    flows/monitor.py scales the old service to zero when ``get_weights().stable == 0``: with
    the rule at 1/999 (someone kept a sliver on the old version) a 0/100 reading would
    decommission it while the ALB still sends it requests. Likewise verify(100/0) must not
    pass while the canary still receives traffic.
    """
    elbv2 = aws.get_client("elbv2")
    elbv2.modify_rule(RuleArn=aws.topology.rule_arn, Actions=[_forward(aws, stable, canary)])
    weights = AlbRouter(elbv2, aws.targets).get_weights()
    assert weights.stable > 0 and weights.canary > 0, f"rule at {stable}/{canary} read as {weights}"


# --- ecs: not-found errors that name what was wrong -------------------------------------


def test_a_misnamed_cluster_is_named(aws):
    """A typo in Targets.cluster is TargetNotFound naming the cluster (botocore's own message,
    "Cluster not found.", names nothing)."""
    typo = "webordinary-edit-clustr"
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets.model_copy(update={"cluster": typo}))
    with pytest.raises(TargetNotFound, match=typo):
        deployer.describe(aws.targets.stable_service)
    with pytest.raises(TargetNotFound, match=typo):
        deployer.update_service(aws.targets.canary_service, desired=0)


def test_update_service_names_a_missing_service(aws):
    """update_service on a misnamed service names it (botocore says only "Service not found.")."""
    deployer = EcsDeployer(aws.get_client("ecs"), aws.targets)
    with pytest.raises(TargetNotFound, match="webordinary-edit-service-canry"):
        deployer.update_service("webordinary-edit-service-canry", desired=0)


# --- clients from the blocks: the region ------------------------------------------------


def test_clients_act_in_the_targets_region_when_the_credentials_block_names_none(aws, monkeypatch):
    """A saved AwsCredentials block without a region (the UI leaves it blank by default) gets
    Targets.region, not whatever region the worker's environment says.

    Here the worker has AWS_DEFAULT_REGION=us-east-1 and the service lives in us-west-2: with
    the worker's region the rollout would look for the load balancer in us-east-1, and in an
    account with the same stack in both regions it would shift the other region's traffic.
    """
    from flows.env import load_clients

    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    saved = AwsCredentials(
        aws_access_key_id="testing",
        aws_secret_access_key=SecretStr("testing"),
        aws_client_parameters=AwsClientParameters(
            endpoint_url=aws.endpoint_url, config={"retries": {"mode": "standard", "max_attempts": 1}}
        ),
    )
    monkeypatch.setattr(AwsCredentials, "load", classmethod(lambda cls, name, *a, **k: saved))

    targets, get_client = load_clients(None, "rollway-aws")
    assert targets.region == "us-west-2"
    assert get_client("elbv2").meta.region_name == targets.region
    assert AlbRouter(get_client("elbv2"), targets).get_weights() == Weights(stable=100, canary=0)


# --- a misnamed block -------------------------------------------------------------------


def test_a_run_whose_targets_block_is_misnamed_is_not_rolled_back_by_its_hook(monkeypatch):
    """A typo in ``targets_block`` fails the run before it touches AWS: the state hook leaves
    it alone, like the other refusals to start. It used to start the rollback flow with the
    same missing block: a second failed run, and advice to run `rollway abort` by hand for a
    rollout that never started.
    """
    from prefect.states import Failed

    from blocks.targets import RollwayTargets
    from flows import env as flow_env
    from flows.hooks import leave_alone

    def missing(cls, name, *args, **kwargs):
        # What Prefect's Block.load raises for a name it does not know.
        raise ValueError(f"Unable to find block document named {name} for block type rollway-targets")

    monkeypatch.setattr(RollwayTargets, "load", classmethod(missing))
    with pytest.raises(Exception) as caught:
        flow_env.load_targets("rollway-targts")
    state = Failed(data=caught.value, message=f"Flow run encountered an exception: {caught.value!r}")
    params = {"targets_block": "rollway-targts", "aws_credentials_block": "rollway-aws"}
    assert leave_alone(state, params) is not None


def test_a_saved_targets_block_that_no_longer_validates_is_a_refusal(monkeypatch):
    """A block saved before its names were checked (say, region "us-west-2 ") fails Prefect's
    own validation at load, which raises a RuntimeError: the run must stop as AccountNotLoaded,
    which the hooks leave alone, not as an error whose rollback fails the same way."""
    from prefect.states import Failed

    from blocks.targets import RollwayTargets
    from flows.env import AccountNotLoaded, load_targets
    from flows.hooks import leave_alone

    def stale(cls, name, *args, **kwargs):
        # What Prefect's Block.load raises when a saved document fails the block's validation.
        raise RuntimeError(f"Unable to load {name!r} of block type 'rollway-targets' due to failed validation.")

    monkeypatch.setattr(RollwayTargets, "load", classmethod(stale))
    with pytest.raises(AccountNotLoaded, match="failed validation") as caught:
        load_targets("old-targets")
    state = Failed(data=caught.value, message=f"Flow run encountered an exception: {caught.value!r}")
    assert leave_alone(state, {"targets_block": "old-targets"}) is not None


def test_a_credentials_block_holding_a_session_token_is_refused_before_any_call(monkeypatch):
    """prefect-aws keeps aws_session_token as a plain str: stored unmasked by Prefect, shown by
    its UI and printed by a repr. rollway refuses such a block instead of using the secret."""
    from flows.env import AccountNotLoaded, load_clients

    saved = AwsCredentials(aws_access_key_id="ASIAEXAMPLE", aws_secret_access_key=SecretStr("secret"),
                           aws_session_token="FwoGZXIvYXdzEXAMPLE", region_name="us-west-2")
    saved._block_document_name = "rollway-aws"  # as Block.load names what it loaded
    monkeypatch.setattr(AwsCredentials, "load", classmethod(lambda cls, name, *a, **k: saved))
    with pytest.raises(AccountNotLoaded, match="assume_role_arn") as refused:
        load_clients(None, "rollway-aws")
    assert "FwoGZXIvYXdzEXAMPLE" not in str(refused.value)
    # Which block to fix, among those saved.
    assert str(refused.value).startswith("the AWS credentials block 'rollway-aws' holds aws_session_token"), refused.value


def test_credentials_for_another_region_than_the_targets_are_refused_before_any_call(monkeypatch):
    from flows.env import AccountNotLoaded, load_clients

    saved = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"),
                           region_name="eu-west-1")
    monkeypatch.setattr(AwsCredentials, "load", classmethod(lambda cls, name, *a, **k: saved))
    with pytest.raises(AccountNotLoaded, match="eu-west-1.*us-west-2"):
        load_clients(None, "rollway-aws")


@pytest.mark.parametrize("role", ["rollway-deployer", "arn:aws:iam::123456789012:user/deployer",
                                  "arn:aws:iam::123456789012:role/rollway-deployer "])
def test_an_assume_role_arn_that_is_not_a_roles_arn_is_refused_before_sts_is_asked(monkeypatch, every_call, role):
    """The role's name typed where its ARN goes (or a user's ARN, or one pasted with a trailing
    space) went to STS as it was, and the run ended on STS's answer, which names no field."""
    from flows.env import AccountNotLoaded, load_clients

    saved = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"),
                           region_name="us-west-2", assume_role_arn=role)
    monkeypatch.setattr(AwsCredentials, "load", classmethod(lambda cls, name, *a, **k: saved))
    asked = every_call("sts")
    with pytest.raises(AccountNotLoaded) as refused:
        load_clients(None, "rollway-aws")
    assert str(refused.value) == (
        f"the AWS credentials' assume_role_arn {role!r} is not an IAM role's ARN "
        "(arn:aws:iam::<account id>:role/<name>): give the role's whole ARN")
    assert asked == []


def test_assumed_role_credentials_renew_themselves_before_they_expire(aws):
    """A block with assume_role_arn: prefect-aws assumes the role once and keeps the result, so
    a rollout longer than the credentials' life (an hour by default) failed with ExpiredToken,
    and so did its rollback. The clients' credentials now renew through AssumeRole again.

    Credentials for 900 s are inside botocore's 15-minute renewal window from the start, so
    every signing asks for new ones: moto issues new keys on each AssumeRole.
    """
    from prefect_aws.assume_role_parameters import AssumeRoleParameters

    from blocks.credentials import client_factory, credentials_for_endpoint

    block = credentials_for_endpoint(aws.endpoint_url, aws.targets.region).model_copy(update={
        "aws_access_key_id": "assume-role-test",  # a client cache of its own
        "assume_role_arn": "arn:aws:iam::123456789012:role/rollway-deployer",
        "assume_role_kwargs": AssumeRoleParameters(DurationSeconds=900, RoleSessionName="rollway-test"),
    })
    elbv2 = client_factory(block)("elbv2")
    signed_with: list[str] = []

    def key_of(request, **_):
        authorization = request.headers["Authorization"]
        authorization = authorization.decode() if isinstance(authorization, bytes) else authorization
        signed_with.append(authorization.split("Credential=")[1].split("/")[0])

    elbv2.meta.events.register("before-send.*", key_of)
    router = AlbRouter(elbv2, aws.targets)
    assert router.get_weights() == Weights(stable=100, canary=0)
    assert router.get_weights() == Weights(stable=100, canary=0)
    assert len(signed_with) >= 2 and all(key != "assume-role-test" for key in signed_with), signed_with
    assert len(set(signed_with)) >= 2, f"the assumed role's keys never renewed: {signed_with}"


def test_a_role_sts_will_not_renew_mid_run_is_said_as_such_not_as_the_calls_permission(aws, monkeypatch):
    """Renewed as some other call is signed, a refused AssumeRole came out of that call as a bare
    "AccessDenied when calling the AssumeRole operation", which the adapters' refusal naming took
    for the worker lacking a permission: "AWS refused sts:AssumeRole ... it is granted by
    deployments/iam-policy-infrastructure.json, statement DeployThroughTheCdkBootstrapRoles",
    the wrong role and the wrong remedy. It now names the credentials' role, the call that was
    not sent, and what to change; it is still a ClientError, handled as every refused call is.

    Credentials for 900 s, with botocore's mandatory renewal window widened from 10 to 20
    minutes, are inside it: the next call must renew them, as one does an hour into a rollout.
    """
    import botocore.credentials

    from botocore.client import BaseClient
    from botocore.exceptions import ClientError
    from prefect_aws.assume_role_parameters import AssumeRoleParameters

    from blocks.credentials import client_factory, credentials_for_endpoint
    from rollway.aws.denied import named_denials

    role = "arn:aws:iam::123456789012:role/rollway-release"
    block = credentials_for_endpoint(aws.endpoint_url, aws.targets.region).model_copy(update={
        "aws_access_key_id": "renewal-refused-test",
        "assume_role_arn": role,
        "assume_role_kwargs": AssumeRoleParameters(DurationSeconds=900, RoleSessionName="rollway-test"),
    })
    router = AlbRouter(client_factory(block)("elbv2"), aws.targets)
    assert router.get_weights() == Weights(stable=100, canary=0)
    real = BaseClient._make_api_call
    for window in ("_advisory_refresh_timeout", "_mandatory_refresh_timeout"):
        monkeypatch.setattr(botocore.credentials.RefreshableCredentials, window, 20 * 60)

    def trust_withdrawn(client, operation_name, api_params):
        if operation_name == "AssumeRole":
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": (
                "User: arn:aws:iam::123456789012:user/worker is not authorized to perform: sts:AssumeRole on "
                f"resource: {role}")}}, operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", trust_withdrawn)
    with pytest.raises(Exception) as caught, named_denials("iam-policy.json"):
        router.get_weights()
    message = str(caught.value)
    assert isinstance(caught.value, ClientError), message
    assert "DeployThroughTheCdkBootstrapRoles" not in message
    assert message.endswith(
        f"is not authorized to perform: sts:AssumeRole on resource: {role} (renewing the AWS credentials' assumed "
        f"role {role}, due as elbv2 DescribeRules was to be sent, which was not; grant the credentials' "
        "identity sts:AssumeRole on that role (its IAM policy, or the role's trust policy), then run again)"), message
