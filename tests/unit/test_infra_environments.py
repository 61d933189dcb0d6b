"""Which environments ``cdk bootstrap`` prepares: every distinct account/region of the stacks to
deploy, the unknown parts from the deploying account and Targets.region (pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.infra import (
    AppStacks, PlanRefused, StackEnvironment, bootstrap_environments, named_resources, resource_places,
    stack_environments,
)

HOME = StackEnvironment(account="123456789012", region="us-west-2")
STACKS = {"A": (), "B": (), "C": (), "D": ()}


@pytest.mark.parametrize("environments, stacks, expected", [
    ({}, "ABCD", ["aws://123456789012/us-west-2"]),  # environment-agnostic: Targets.region, once
    ({"A": "aws://unknown-account/unknown-region"}, "A", ["aws://123456789012/us-west-2"]),
    ({"A": "aws://123456789012/us-west-2"}, "AB", ["aws://123456789012/us-west-2"]),  # the same one, once
    ({"A": "aws://123456789012/eu-west-1"}, "AB", ["aws://123456789012/eu-west-1", "aws://123456789012/us-west-2"]),
    ({"B": "aws://123456789012/eu-west-1"}, "AB", ["aws://123456789012/us-west-2", "aws://123456789012/eu-west-1"]),
    ({"A": "aws://111111111111/unknown-region"}, "A", ["aws://111111111111/us-west-2"]),
    ({"A": "aws://unknown-account/us-gov-west-1"}, "A", ["aws://123456789012/us-gov-west-1"]),
    ({"A": "aws://123456789012/eusc-de-east-1"}, "A", ["aws://123456789012/eusc-de-east-1"]),  # a 4-letter prefix
    ({"A": "aws://111111111111/eu-west-1", "B": "aws://111111111111/eu-west-1", "C": "aws://222222222222/eu-west-1"},
     "ABCD", ["aws://111111111111/eu-west-1", "aws://222222222222/eu-west-1", "aws://123456789012/us-west-2"]),
    ({"A": "aws://123456789012/eu-west-1"}, "BC", ["aws://123456789012/us-west-2"]),  # A is not deployed
])
def test_each_distinct_environment_once_in_the_order_of_its_first_stack(environments, stacks, expected):
    app = AppStacks(dependencies=STACKS, environments=environments)
    assert [e.uri for e in bootstrap_environments(app, list(stacks), HOME)] == expected


@pytest.mark.parametrize("environment", [
    "aws://123456789012/us west 2", "aws://123456789012/US-WEST-2", "aws://123456789012/", "aws://12345/us-west-2",
    "aws://123456789012/us-west-2/x", "us-west-2", "aws://${Token[AWS.AccountId.1]}/us-west-2", "",
    # An account with a trailing newline (a value pasted into the app's env) passed the account's
    # check and failed later with a validation traceback instead of this refusal.
    "aws://123456789012\n/us-west-2",
])
def test_a_malformed_environment_is_refused_naming_every_stack(environment):
    app = AppStacks(dependencies=STACKS, environments={"A": environment, "C": environment})
    with pytest.raises(PlanRefused) as caught:
        stack_environments(app, ["A", "B", "C"], HOME)
    assert f"A ({environment!r}), C ({environment!r})" in str(caught.value)
    assert "nothing was deployed" in str(caught.value)


def test_only_the_stacks_asked_are_checked():
    app = AppStacks(dependencies=STACKS, environments={"D": "aws://bad/bad"})
    assert set(stack_environments(app, ["A", "B"], HOME)) == {"A", "B"}


# --- where the checklist reads a table, a queue, the dashboard, an alarm, the topic ----------

def test_only_the_names_a_template_writes_out_are_taken():
    template = {"Resources": {
        "A": {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": "t"}},
        "B": {"Type": "AWS::DynamoDB::GlobalTable", "Properties": {"TableName": "g"}},
        "C": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "D": {"Type": "AWS::SQS::Queue"},  # CloudFormation names it: cannot be matched before the deploy
        "E": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "AWS::StackName"}}},
        "F": {"Type": "AWS::CloudWatch::CompositeAlarm", "Properties": {"AlarmName": "c"}},
        "G": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b"}},
    }}
    assert named_resources(template) == {"table": ("t", "g"), "queue": ("q",), "alarm": ("c",)}
    assert named_resources({}) == {} and named_resources({"Resources": None}) == {}


PLACED = AppStacks(dependencies=STACKS, environments={"A": "aws://123456789012/eu-west-1",
                                                      "C": "aws://210987654321/us-west-2"},
                   resources={"A": {"table": ("sessions", "both")}, "B": {"table": ("both",)},
                              "C": {"queue": ("q",)}, "D": {"alarm": ("unwanted",)}})


def test_a_resource_is_placed_with_the_stack_that_defines_it():
    places = resource_places(PLACED, [("table", "sessions"), ("queue", "q"), ("table", "nobody"),
                                      ("queue", "sessions")], HOME)
    assert {k: (p.stack, p.environment.uri) for k, p in places.items()} == {
        ("table", "sessions"): ("A", "aws://123456789012/eu-west-1"),
        ("queue", "q"): ("C", "aws://210987654321/us-west-2"),
    }  # a name no stack defines (or defines as another kind) is left to Targets.region


def test_a_name_two_stacks_define_goes_with_the_one_in_the_targets_region():
    places = resource_places(PLACED, [("table", "both")], HOME)
    assert places[("table", "both")].stack == "B"
    elsewhere = PLACED.model_copy(update={"environments": {**PLACED.environments, "B": "aws://123456789012/eu-west-2"}})
    assert resource_places(elsewhere, [("table", "both")], HOME)[("table", "both")].stack == "A"  # the first


def test_a_stack_defining_a_checked_resource_with_a_malformed_environment_is_refused():
    bad = PLACED.model_copy(update={"environments": {"A": "aws://12345/eu-west-1", "D": "aws://bad/bad"}})
    with pytest.raises(PlanRefused, match=r"A \('aws://12345/eu-west-1'\)"):
        resource_places(bad, [("table", "sessions")], HOME)
    assert resource_places(bad, [("queue", "q")], HOME)  # D's alarm is not checked: its env is not looked at


# The CDK toolkit stack (CDKToolkit) of each environment a stack goes to, checked before the first deploy: cdk
# publishes a stack's assets and checks its bootstrap version through it, and its error came only once the run
# reached the first stack going there, after the stacks before it were deployed.
EU = StackEnvironment(account="123456789012", region="eu-west-1")


def _toolkit(status, reason=None):
    from rollway.cleanup import StackState

    return StackState(name="CDKToolkit", status=status, status_reason=reason)


@pytest.mark.parametrize("found, bootstrapping, refused", [
    ({HOME: _toolkit("CREATE_COMPLETE"), EU: _toolkit("UPDATE_ROLLBACK_COMPLETE")}, (), []),
    ({HOME: _toolkit("UPDATE_COMPLETE")}, (), []),
    ({}, (), []),  # not read (a read that failed, another account): cdk judges
    # Missing: cdk bootstrap makes it, when this run bootstraps; otherwise refused, with the command.
    ({HOME: _toolkit(None)}, (HOME,), []),
    ({HOME: _toolkit(None)}, (), ["the CDK toolkit stack CDKToolkit of aws://123456789012/us-west-2 does not exist",
                                  "A, B need it", "cdk bootstrap aws://123456789012/us-west-2", "bootstrap=true"]),
    ({HOME: _toolkit("DELETE_COMPLETE")}, (), ["CDKToolkit of aws://123456789012/us-west-2 does not exist"]),
    # A failed creation is no toolkit (cdk treats it as none); cdk bootstrap deletes and creates it again.
    ({EU: _toolkit("ROLLBACK_COMPLETE", "The following resource(s) failed to create: [StagingBucket].")}, (),
     ["CDKToolkit of aws://123456789012/eu-west-1 is ROLLBACK_COMPLETE (CloudFormation says: The following "
      "resource(s) failed to create: [StagingBucket].)", "C needs it", "cdk bootstrap aws://123456789012/eu-west-1"]),
    ({EU: _toolkit("ROLLBACK_FAILED")}, (EU,), []),
    # Still changing: refused, bootstrapping or not.
    ({HOME: _toolkit("UPDATE_IN_PROGRESS")}, (HOME,),
     ["CDKToolkit of aws://123456789012/us-west-2 is UPDATE_IN_PROGRESS: CloudFormation is still working on it"]),
    ({EU: _toolkit("DELETE_IN_PROGRESS")}, (),
     ["CDKToolkit of aws://123456789012/eu-west-1 is DELETE_IN_PROGRESS: CloudFormation is still working on it"]),
    # Stuck: a bootstrap cannot update it; without one, one half-deleted or paused half-made holds no whole toolkit.
    ({HOME: _toolkit("UPDATE_ROLLBACK_FAILED", "Role: AccessDenied")}, (HOME,),
     ["CDKToolkit of aws://123456789012/us-west-2 is UPDATE_ROLLBACK_FAILED (CloudFormation says: Role: AccessDenied)",
      "aws cloudformation continue-update-rollback --stack-name CDKToolkit --region us-west-2"]),
    ({HOME: _toolkit("DELETE_FAILED")}, (),
     ["CDKToolkit of aws://123456789012/us-west-2 is DELETE_FAILED",
      "aws cloudformation delete-stack --stack-name CDKToolkit --region us-west-2",
      "cdk bootstrap aws://123456789012/us-west-2"]),
    # Its last good version's roles and bucket stand: cdk deploys through them, with no bootstrap asked.
    ({HOME: _toolkit("UPDATE_ROLLBACK_FAILED")}, (), []),
])
def test_a_toolkit_stack_the_deploys_cannot_use_is_refused_before_the_first_deploy(found, bootstrapping, refused):
    from rollway.infra import check_toolkits

    needed_by = {HOME: ("A", "B"), EU: ("C",)}
    if not refused:
        check_toolkits(found, needed_by, bootstrapping=bootstrapping)
        return
    with pytest.raises(PlanRefused) as caught:
        check_toolkits(found, needed_by, bootstrapping=bootstrapping)
    said = str(caught.value)
    assert all(part in said for part in refused), said
    assert said.endswith("(nothing was deployed)"), said


def test_the_toolkit_stack_is_named_as_the_apps_cdk_json_names_it():
    from rollway.infra import check_toolkits

    with pytest.raises(PlanRefused) as caught:
        check_toolkits({HOME: _toolkit(None)}, {HOME: ("A",)}, name="AcmeToolkit")
    said = str(caught.value)
    assert "the CDK toolkit stack AcmeToolkit of aws://123456789012/us-west-2 does not exist" in said, said
    assert "toolkitStackName" in said, said


@pytest.mark.parametrize("version, bootstrapping, refused", [
    (21, (), False), (6, (), False), (None, (), False),  # not given: cdk judges
    (5, (HOME,), False),  # the run's bootstrap brings it up to date first
    (5, (), True),
])
def test_a_toolkit_older_than_the_stacks_require_is_refused_before_the_first_deploy(version, bootstrapping, refused):
    # cdk's "This CDK deployment requires bootstrap stack version '6', found '5'" came at the first stack going
    # there, after the stacks before it (in another region) were deployed.
    from rollway.infra import check_toolkits

    def check():
        check_toolkits({HOME: _toolkit("UPDATE_COMPLETE")}, {HOME: ("A", "B")}, bootstrapping=bootstrapping,
                       versions={HOME: version} if version is not None else {}, required={HOME: 6})

    if not refused:
        check()
        return
    with pytest.raises(PlanRefused) as caught:
        check()
    assert str(caught.value) == (
        "the CDK toolkit stack CDKToolkit of aws://123456789012/us-west-2 is at bootstrap version 5, and A, B "
        "require version 6: bootstrap it again (cdk bootstrap aws://123456789012/us-west-2, with credentials that may "
        "create its roles and bucket, or run again with bootstrap=true) (nothing was deployed)"), str(caught.value)
