"""deploy_infrastructure on the Prefect harness: a fake deployer for the order, failures and
resuming; the embedded AWS for the checklist."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from types import SimpleNamespace

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort
from prefect.exceptions import ParameterTypeError

from flows.infra import (
    ARTIFACT_KEY, CHECKLIST_ARTIFACT_KEY, AwsNotRead, ChecklistFailed, InfraDeployFailed, InfraRefused, checker_for,
    deploy_infrastructure, run_deploy_infrastructure, run_verify_infrastructure, verify_infrastructure,
)
from rollway.checklist import Checklist, CheckItem
from rollway.fakes import FakeInfraDeployer
from rollway.infra import AppNotListed, AppStacks, PlanRefused, StackEnvironment
from rollway.targets import Targets
from rollway.toolchain.process import ToolMissing
from tests.flows.moto_env import deployed_stacks, inbox, saved_blocks
from tests.unit.test_infra_plan import WEBORDINARY

STACKS = Targets().stacks


class Passing:
    """A checker whose every item passes (the flow-logic tests need no AWS)."""

    def check(self) -> Checklist:
        return Checklist(items=(CheckItem(kind="dashboard", name="d", passed=True, reason="exists"),))


HOME = StackEnvironment(account="123456789012", region="us-west-2")


@flow
def deploy_on(deployer, checker=None, requested=STACKS, **kwargs):
    return run_deploy_infrastructure(deployer, checker, requested, stack_timeout_seconds=60, home=HOME, **kwargs)


@flow
def verify_on(checker):
    return run_verify_infrastructure(checker)


def latest(key: str, since: float) -> str:
    with get_client(sync_client=True) as client:
        # Newest first: the server's default order and page left the newest out once a key had many.
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                      sort=ArtifactSort.CREATED_DESC, limit=50)
    fresh = [a for a in found if a.created.timestamp() >= since - 1]
    assert fresh, f"no artifact {key} from this test"
    return max(fresh, key=lambda a: a.created).data


def test_every_stack_deploys_in_order_then_the_checklist_passes(caplog):
    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY)
    result = deploy_on(deployer, lambda _app: Passing())
    assert deployer.calls == ["list", *(f"deploy {s}" for s in STACKS)]
    assert [r.status for r in result.stacks] == ["deployed"] * len(STACKS)
    assert result.checklist is not None and result.checklist.passed
    summary = latest(ARTIFACT_KEY, since)
    assert "# Infrastructure deployed" in summary and "| 5 | `WebordinarySQSStack` | deployed |" in summary
    assert "## Pre-deployment checklist" in summary
    # Synthesizing (minutes for an app that bundles assets) is said before it starts.
    assert "synthesizing the CDK app to read its stacks" in caplog.text
    # cdk's lines in the run's log as they came, each with where the run stands.
    assert "stack 5/8 WebordinarySQSStack | WebordinarySQSStack: deploying... [1/1]" in caplog.text
    assert "stack 8/8 WebordinaryMonitoringStack | ✅  WebordinaryMonitoringStack" in caplog.text


def test_a_stack_already_up_to_date_is_said_to_have_had_no_changes(caplog):
    # cdk's "✅  <stack> (no changes)": the log and the artifact said "deployed" of it as of a stack just updated,
    # and a person could not tell from them what the run changed.
    class UpToDate(FakeInfraDeployer):
        def deploy(self, stack, **kwargs):
            deployed = super().deploy(stack, **kwargs)
            return deployed.model_copy(update={"unchanged": stack != "WebordinarySQSStack"})

    since = time.time()
    deploy_on(UpToDate(WEBORDINARY), None)
    summary = latest(ARTIFACT_KEY, since)
    # CloudFormation not read (no statuses here): cdk's word, said to be its.
    assert ("| 1 | `WebordinaryECRStack` | deployed | 0.0 | no changes (the stack was up to date: cdk said so; "
            "CloudFormation's state of it was not read); ") in summary, summary
    assert "| 5 | `WebordinarySQSStack` | deployed | 0.0 | arn:" in summary, summary
    assert "stack 1/8 WebordinaryECRStack: no changes, the stack was up to date (cdk said so;" in caplog.text
    assert "all 8 stack(s) of the plan are deployed; CloudFormation changed 1 (WebordinarySQSStack), 7 were up to " \
           "date" in caplog.text, caplog.text


def test_whether_a_stack_was_up_to_date_is_read_from_cloudformation_not_from_one_line_of_cdk(aws, caplog):
    """"No changes" was cdk's one line ("✅  <selector> (no changes)"): a stack cdk shows by another name
    (a construct path, "Prod/Queues (Prod-Queues)"), or another cdk version's wording, was said changed though
    CloudFormation had not moved it, and one cdk called up to date was said so whatever CloudFormation showed.
    CloudFormation's reads before and after the deploy decide now; cdk's word only where they are missing."""
    class CdkSaysOtherwise(_OnCloudFormation):
        def deploy(self, stack, **kwargs):  # cdk's line not recognised for any stack but the one changed
            return super().deploy(stack, **kwargs).model_copy(update={"unchanged": stack in self.changes})

    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    since = time.time()
    deploy_on(CdkSaysOtherwise(cloudformation, changes=["WebordinarySQSStack"]), None, statuses=_read_by(aws))
    summary = latest(ARTIFACT_KEY, since)
    assert ("| 1 | `WebordinaryECRStack` | deployed | 0.0 | no changes (the stack was up to date: CloudFormation shows "
            "it as it was before the deploy); ") in summary, summary
    assert "| 5 | `WebordinarySQSStack` | deployed | 0.0 | arn:" in summary, summary
    assert "stack 1/8 WebordinaryECRStack: no changes, the stack was up to date (CloudFormation shows it as it was " \
           "before the deploy)" in caplog.text, caplog.text
    assert "stack 5/8 WebordinarySQSStack: no changes" not in caplog.text, caplog.text
    assert ("all 8 stack(s) of the plan are deployed; CloudFormation changed 1 (WebordinarySQSStack), 7 were up to "
            "date") in caplog.text, caplog.text


def test_a_deploy_that_only_turned_termination_protection_on_is_not_said_up_to_date(aws, caplog):
    """cdk (aws-cdk 2.1148, deploy-stack's updateTerminationProtection) applies a stack's changed
    terminationProtection with UpdateTerminationProtection, then finds the template unchanged and
    says "(no changes)": CloudFormation adds no event for it and moves neither status nor
    LastUpdatedTime, so the run said the stack was up to date though it had changed it."""
    from tests.botocore_events import on_operation

    protected: set[str] = set()

    class Protecting(_OnCloudFormation):
        def deploy(self, stack, **kwargs):
            if stack == "WebordinaryEFSStack":
                protected.add(stack)  # moto has no UpdateTerminationProtection: its answers say what AWS would
            return super().deploy(stack, **kwargs).model_copy(update={"unchanged": True})

    def as_aws_answers(parsed, **_):
        for found in parsed.get("Stacks", []):
            found["EnableTerminationProtection"] = found["StackName"] in protected

    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    since = time.time()
    with on_operation(cloudformation, "after-call", as_aws_answers, operation="DescribeStacks"):
        deploy_on(Protecting(cloudformation), None, statuses=_read_by(aws))
    summary = latest(ARTIFACT_KEY, since)
    assert "`WebordinaryEFSStack` | deployed | 0.0 | arn:" in summary, summary
    assert "WebordinaryEFSStack: no changes" not in caplog.text, caplog.text
    assert ("all 8 stack(s) of the plan are deployed; CloudFormation changed 1 (WebordinaryEFSStack), 7 were up to "
            "date") in caplog.text, caplog.text


def test_a_resumed_run_counts_the_stacks_an_earlier_run_deployed_apart_in_its_last_line(aws, caplog):
    """"all 8 stack(s) of the plan are deployed; CloudFormation changed 1, 3 were up to date": the
    four before from_stack, not deployed by this run, were in neither count, and the line's numbers
    did not add up to what it said of the plan."""
    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    deploy_on(_OnCloudFormation(cloudformation, changes=["WebordinarySQSStack"]), None,
              from_stack="WebordinarySQSStack", statuses=_read_by(aws))
    assert ("all 8 stack(s) of the plan are deployed; CloudFormation changed 1 (WebordinarySQSStack), 3 were up to "
            "date, and 4 deployed by an earlier run were not deployed again (WebordinaryECRStack, "
            "WebordinarySecretsStack, WebordinaryEFSStack, WebordinaryALBStack)") in caplog.text, caplog.text


def test_a_run_stopped_at_a_stack_says_which_stacks_before_it_were_up_to_date(aws):
    """The artifact of a run that failed at a stack is the one a person reads to resume: the stacks
    deployed before it say whether CloudFormation changed them, as a run that finished says."""
    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    since = time.time()
    deployer = _OnCloudFormation(cloudformation, changes=["WebordinaryEFSStack"],
                                 failing={"WebordinarySQSStack": "Failed to publish asset"})
    with pytest.raises(InfraDeployFailed) as failed:
        deploy_on(deployer, None, statuses=_read_by(aws))
    # The error, what a person reads first, said "deployed in this run" of all four alike.
    assert ("deployed in this run: WebordinaryECRStack, WebordinarySecretsStack, WebordinaryEFSStack, "
            "WebordinaryALBStack (CloudFormation changed WebordinaryEFSStack; WebordinaryECRStack, "
            "WebordinarySecretsStack, WebordinaryALBStack were up to date)\n") in str(failed.value), str(failed.value)
    summary = latest(ARTIFACT_KEY, since)
    assert ("| 1 | `WebordinaryECRStack` | deployed | 0.0 | no changes (the stack was up to date: CloudFormation shows "
            "it as it was before the deploy); ") in summary, summary
    assert "| 3 | `WebordinaryEFSStack` | deployed | 0.0 | arn:" in summary, summary
    assert "| 5 | `WebordinarySQSStack` | failed |" in summary, summary


def test_a_run_that_creates_every_stack_it_deploys_says_so_before_the_first_deploy(aws, caplog):
    # Targets' region (or the credentials' account) not the one the stacks live in: every stack to deploy was
    # created afresh there, a second copy of the infrastructure, and the checklist then passed on it; nothing
    # said, before the first deploy, that the run was about to create them all.
    cloudformation = aws.get_client("cloudformation")
    deploy_on(_OnCloudFormation(cloudformation), None, statuses=_read_by(aws))
    assert ("none of the 8 stacks to deploy exists in CloudFormation in us-west-2 of account 123456789012: this run "
            "creates them all there. If they are deployed already, it is elsewhere: the targets' region or the "
            "credentials' account is not theirs (cancel the run)") in caplog.text, caplog.text

    caplog.clear()
    deployed_stacks(aws)  # all of them there: nothing said
    deploy_on(_OnCloudFormation(cloudformation), None, statuses=_read_by(aws))
    assert "this run creates" not in caplog.text


def test_a_resume_whose_stacks_before_from_stack_exist_is_not_warned_that_it_creates_them_all(caplog):
    # The stacks to deploy of a resume are those from from_stack on: none of them there yet (a first deploy
    # stopped at its first new stack) warned "this run creates them all there ... (cancel the run)", though the
    # stacks before from_stack, confirmed deployed in that region, said the region was the right one.
    from rollway.cleanup import StackState

    existing = set(STACKS[:4])

    class Reading:
        def status(self, name):
            return "CREATE_COMPLETE" if name in existing else None

        def seen(self, name):
            return StackState(name=name, stack_id=f"id/{name}" if name in existing else None,
                              status=self.status(name))

    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    deploy_on(deployer, None, statuses=lambda _region: Reading(), from_stack=STACKS[4])
    assert "this run creates" not in caplog.text, caplog.text
    assert ("not in CloudFormation in us-west-2 of account 123456789012 yet, so created by this run: "
            f"{', '.join(STACKS[4:])}") in caplog.text, caplog.text


def test_a_checked_alarm_the_apps_templates_name_otherwise_is_told_before_the_first_deploy(aws, caplog):
    # Its checklist item failed ("does not exist") only after every stack was deployed.
    alarm = aws.targets.alarms[0]
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = deployer.app.model_copy(update={"resources": {"WebordinaryMonitoringStack": {
        "alarm": (alarm + "-v2",)}}})
    with pytest.raises(ChecklistFailed):
        deploy_on(deployer, lambda app: checker_for(aws.get_client, aws.targets, app=app, home=HOME))
    said = f"the checklist looks for alarm {alarm} (did you mean '{alarm}-v2'?); "
    assert said in caplog.text, caplog.text
    assert ("which no stack of the CDK app names, though it names others of its kind: unless made outside the app or "
            "named by a function (Fn::Sub, Ref), their items fail once the stacks are deployed") in caplog.text
    assert caplog.text.index(said) < caplog.text.index("stack 1/8 WebordinaryECRStack: deploying")


def test_stacks_asked_out_of_order_deploy_after_what_they_depend_on():
    deployer = FakeInfraDeployer(WEBORDINARY)
    result = deploy_on(deployer, None, requested=["WebordinaryMonitoringStack", *STACKS[:-1]])
    assert deployer.deployed == list(STACKS)
    assert result.reordered and result.checklist is None


@pytest.mark.parametrize("requested, kwargs, match", [
    (["WebordinarySQSStak"], {}, "did you mean 'WebordinarySQSStack'"),
    (["WebordinarySessionStack"], {}, "depends on WebordinarySQSStack"),
    (STACKS, {"from_stack": "WebordinaryNope"}, "not one of the stacks"),
])
def test_a_bad_plan_is_refused_before_any_deploy(requested, kwargs, match):
    deployer = FakeInfraDeployer(WEBORDINARY)
    prepared = []
    with pytest.raises(PlanRefused, match=match):
        deploy_on(deployer, lambda _app: Passing(), requested=requested, bootstrap=lambda *_: prepared.append(1),
                  **kwargs)
    assert deployer.calls in (["list"], [])
    assert not prepared  # no bootstrap either


def test_a_refused_run_says_so_in_the_artifact_in_place_of_an_earlier_runs_deployed(tmp_path):
    """A run refused before any deploy (a stack the app does not define, its app directory
    mistyped) wrote no artifact: the key's newest was still the earlier run's "Infrastructure
    deployed", read in the UI as this run's outcome."""
    deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: Passing())
    since = time.time()
    with pytest.raises(PlanRefused, match="did you mean"):
        deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: Passing(), requested=["WebordinarySQSStak"])
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: refused, nothing deployed"), summary
    assert "did you mean 'WebordinarySQSStack'" in summary
    assert "| 1 | `WebordinarySQSStak` | not deployed |" in summary

    since = time.time()
    with pytest.raises(InfraRefused, match="not a directory"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path / "nope"), stacks=["WebordinarySQSStack"])
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: refused, nothing deployed"), summary
    assert "is not a directory" in summary and "| 1 | `WebordinarySQSStack` | not deployed |" in summary


def test_preparing_comes_after_the_plan_and_before_the_first_deploy():
    deployer = FakeInfraDeployer(WEBORDINARY)
    deploy_on(deployer, None, bootstrap=lambda env, _progress: deployer.calls.append(f"bootstrap {env.uri}"))
    assert deployer.calls[:3] == ["list", "bootstrap aws://123456789012/us-west-2", f"deploy {STACKS[0]}"]


def test_a_failed_bootstrap_says_nothing_was_deployed_and_leaves_an_artifact():
    from rollway.infra import StackDeployFailed

    def bootstrap(_env, _progress):
        raise StackDeployFailed("CDKToolkit", "AccessDenied: not allowed to create the toolkit bucket",
                                ("CDKToolkit: creating...", "❌  Environment aws://123456789012/us-west-2 failed"))

    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY)
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, lambda _app: Passing(), bootstrap=bootstrap)
    assert deployer.calls == ["list"]
    message = str(caught.value)
    assert "cdk bootstrap of aws://123456789012/us-west-2 failed: AccessDenied" in message
    assert f"no stack was deployed: {', '.join(STACKS)}" in message
    assert "❌  Environment aws://123456789012/us-west-2 failed" in message
    summary = latest(ARTIFACT_KEY, since)
    assert "stopped at cdk bootstrap" in summary and "| 1 | `WebordinaryECRStack` | not deployed |" in summary
    assert "from_stack" not in summary


# The app pins its ECR stack to eu-west-1 and its secrets to another account; the rest follow
# the deploying account and Targets.region.
PINNED = {"WebordinaryECRStack": "aws://123456789012/eu-west-1",
          "WebordinarySecretsStack": "aws://210987654321/us-west-2",
          "WebordinaryEFSStack": "aws://unknown-account/unknown-region",
          "WebordinaryALBStack": "aws://123456789012/unknown-region",
          "WebordinarySQSStack": "aws://123456789012/eu-west-1"}


def pinned_deployer(**kwargs) -> FakeInfraDeployer:
    deployer = FakeInfraDeployer(WEBORDINARY, **kwargs)
    deployer.app = AppStacks(dependencies=deployer.app.dependencies, environments=PINNED)
    return deployer


def with_toolkit(toolkit: str) -> FakeInfraDeployer:
    """Webordinary's app, its toolkit stack named ``toolkit`` (as its cdk.json's toolkitStackName would)."""
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = deployer.app.model_copy(update={"toolkit_stack": toolkit})
    return deployer


# The second: an app whose cdk.json names its toolkit stack, which cdk bootstraps: a run naming
# CDKToolkit sent a person to wait on, or read the events of, a stack cdk was not making.
@pytest.mark.parametrize("toolkit", ["CDKToolkit", "OrgToolkit"])
def test_a_bootstrap_that_timed_out_says_to_wait_for_the_toolkit_stack_before_running_again(toolkit):
    from rollway.infra import StackDeployFailed

    def bootstrap(env, _progress):
        raise StackDeployFailed(f"{toolkit} ({env.uri})", "cdk bootstrap did not finish within 600 s and was stopped",
                                (f"{toolkit} | 3/12 | CREATE_IN_PROGRESS | AWS::S3::Bucket",), timed_out=True)

    since = time.time()
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(with_toolkit(toolkit), None, bootstrap=bootstrap)
    wait = (f"once the toolkit stack ({toolkit}) of aws://123456789012/us-west-2 is no longer IN_PROGRESS in "
            "CloudFormation (cdk was stopped at stack_timeout_seconds, CloudFormation was not), with a larger "
            "stack_timeout_seconds if it needs longer")
    assert f"{wait}, run deploy_infrastructure again (bootstrapping again is safe)" in str(caught.value)
    assert f"Run it again {wait}." in latest(ARTIFACT_KEY, since)


def test_a_bootstrap_whose_cdk_was_asked_to_stop_is_said_interrupted_not_failed():
    """A cancel's SIGTERM reaching cdk during a bootstrap: the run resumed "once the toolkit stack
    is no longer IN_PROGRESS", as an interruption, but its first line said the bootstrap failed."""
    from rollway.infra import StackDeployFailed

    reason = ("cdk was interrupted by SIGTERM before it finished: something asked it to stop (the run cancelled, "
              "or the worker or its machine shutting down)")

    def bootstrap(env, _progress):
        raise StackDeployFailed(f"CDKToolkit ({env.uri})", reason, (), interrupted=True)

    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(FakeInfraDeployer(WEBORDINARY), None, bootstrap=bootstrap)
    first = str(caught.value).splitlines()[0]
    assert first == f"cdk bootstrap of aws://123456789012/us-west-2 was interrupted: {reason}", first


def test_every_environment_of_this_account_the_stacks_go_to_is_bootstrapped_once_in_order(caplog):
    deployer = pinned_deployer()
    deploy_on(deployer, None, bootstrap=lambda env, progress: deployer.calls.append(f"{progress}"))
    assert deployer.calls[:3] == ["list", "bootstrap 1/2 aws://123456789012/eu-west-1",
                                  "bootstrap 2/2 aws://123456789012/us-west-2"]
    assert deployer.calls[3:] == [f"deploy {s}" for s in STACKS]
    assert ("bootstrapping 2 environment(s): aws://123456789012/eu-west-1, aws://123456789012/us-west-2"
            in caplog.text)


def test_another_accounts_environment_is_not_bootstrapped_and_the_run_says_how_to_prepare_it(caplog):
    # cdk refuses this run's credentials in another account (IncorrectDefaultCredentials: "Need to
    # perform AWS calls for account 210987654321, but the current credentials are for
    # 123456789012"): bootstrapping it stopped every run with a stack there, after the others.
    since = time.time()
    deployer = pinned_deployer()
    result = deploy_on(deployer, None, bootstrap=lambda env, _progress: deployer.calls.append(env.uri))
    assert "aws://210987654321/us-west-2" not in deployer.calls
    assert "deploy WebordinarySecretsStack" in deployer.calls  # through the roles that account trusts
    command = ("cdk bootstrap aws://210987654321/us-west-2 --trust 123456789012 --cloudformation-execution-policies "
               "<ARN of the managed policy its stacks need>")
    assert result.bootstrap_elsewhere == (command,)
    assert ("aws://210987654321/us-west-2 is in another account than these credentials' (123456789012): not "
            f"bootstrapped by this run. If it is not yet, bootstrap it once with that account's credentials, trusting "
            f"this one: {command}") in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert "## Not bootstrapped: another account" in summary and f"- `{command}`" in summary


def test_a_stack_of_another_account_that_fails_to_deploy_says_how_to_bootstrap_its_account():
    deployer = pinned_deployer(failing={"WebordinarySecretsStack": "could not assume role cdk-hnb659fds-deploy-role"})
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, None, bootstrap=lambda *_: None)
    assert ("if the stack goes to one that is not bootstrapped to trust this account, run there with its "
            "credentials: cdk bootstrap aws://210987654321/us-west-2 --trust 123456789012") in str(caught.value)


def test_only_the_environments_of_the_stacks_to_deploy_are_bootstrapped():
    deployer = pinned_deployer()
    deploy_on(deployer, None, requested=["WebordinarySQSStack", "WebordinarySessionStack"],
              bootstrap=lambda env, _progress: deployer.calls.append(env.uri))
    assert deployer.calls[:3] == ["list", "aws://123456789012/eu-west-1", "aws://123456789012/us-west-2"]


def test_a_failed_bootstrap_names_the_environment_and_what_was_bootstrapped():
    from rollway.infra import StackDeployFailed

    def bootstrap(env, _progress):
        if env.region == "eu-west-1":
            raise StackDeployFailed(f"CDKToolkit ({env.uri})", "AccessDenied")
        deployer.calls.append(env.uri)

    since = time.time()
    deployer = pinned_deployer()
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, None, bootstrap=bootstrap)
    assert deployer.calls == ["list"]
    message = str(caught.value)
    assert "cdk bootstrap of aws://123456789012/eu-west-1 failed: AccessDenied" in message
    assert "bootstrapped: none; not bootstrapped: aws://123456789012/eu-west-1, aws://123456789012/us-west-2" in message
    assert "stopped at cdk bootstrap of aws://123456789012/eu-west-1" in latest(ARTIFACT_KEY, since)


def test_a_resume_reads_each_skipped_stack_in_its_region_and_deploys_another_accounts_again():
    asked = []

    class Deployed:
        def __init__(self, region):
            self.region = region

        def status(self, name):
            asked.append((self.region, name))
            return "CREATE_COMPLETE"

    deployer = pinned_deployer(already=STACKS[:4])
    result = deploy_on(deployer, None, from_stack="WebordinarySQSStack", statuses=Deployed)
    assert sorted(asked) == [("eu-west-1", "WebordinaryECRStack"), ("us-west-2", "WebordinaryALBStack"),
                             ("us-west-2", "WebordinaryEFSStack")]
    assert [(a.stack, a.status) for a in result.added] == [("WebordinarySecretsStack", "unread")]
    assert deployer.calls[:2] == ["list", "deploy WebordinarySecretsStack"]


@pytest.mark.parametrize("environment", ["aws://123456789012/us west 2", "aws://12345/us-west-2", "us-west-2",
                                         "aws://123456789012/"])
def test_a_stack_with_a_malformed_environment_is_refused_before_any_bootstrap(environment):
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = AppStacks(dependencies=deployer.app.dependencies, environments={"WebordinaryEFSStack": environment})
    with pytest.raises(PlanRefused, match=r"WebordinaryEFSStack \(.*\); fix the env"):
        deploy_on(deployer, None, bootstrap=lambda *_: deployer.calls.append("bootstrap"))
    assert deployer.calls == ["list"]


def test_a_failed_stack_stops_the_run_and_says_how_to_resume(caplog):
    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY, failing={"WebordinarySQSStack": "Resource limit exceeded"})
    checked = []

    class Recording(Passing):
        def check(self) -> Checklist:
            checked.append(1)
            return super().check()

    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, lambda _app: Recording())
    assert deployer.deployed == list(STACKS[:4])
    assert deployer.calls[-1] == "deploy WebordinarySQSStack"  # nothing after it, not even the checklist
    assert not checked
    message = str(caught.value)
    assert "stack WebordinarySQSStack failed to deploy: Resource limit exceeded" in message
    assert f"deployed in this run: {', '.join(STACKS[:4])}" in message
    assert f"not deployed: {', '.join(STACKS[5:])}" in message
    assert "❌  WebordinarySQSStack failed to deploy" in message  # cdk's last lines
    assert "from_stack='WebordinarySQSStack'" in message
    # Whether a run without from_stack would touch the stacks deployed was left to guess; then it was
    # said "safe", where the app changed since (a fix, a context lookup) is deployed to them too.
    assert message.endswith("; the stacks before it are not deployed again (a run without from_stack deploys them "
                            "again too: cdk changes nothing in one the app has not changed since it was deployed, but "
                            "deploys to it whatever the app, or its context, changed since, a fix included)"), message
    assert "safe" not in message, message
    assert "stack 5/8 WebordinarySQSStack | ‣ Resource limit exceeded" in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert "stopped at WebordinarySQSStack" in summary
    assert "| 5 | `WebordinarySQSStack` | failed |" in summary and "| 6 | `WebordinarySessionStack` | not deployed |" in summary


def failing_sqs_stack_left(status: str, reason: str = "Resource limit exceeded"):
    """A deploy of Webordinary's stacks whose WebordinarySQSStack fails, CloudFormation showing it
    ``status`` once its deploy ran (and every other stack UPDATE_COMPLETE): the run's error."""
    from rollway.cleanup import StackState

    deployer = FakeInfraDeployer(WEBORDINARY, failing={"WebordinarySQSStack": reason})

    class Reading:
        def status(self, name):
            return "UPDATE_COMPLETE"

        def seen(self, name):
            failed = name == "WebordinarySQSStack" and "deploy WebordinarySQSStack" in deployer.calls
            return StackState(name=name, stack_id=f"id/{name}", status=status if failed else "UPDATE_COMPLETE")

    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, None, statuses=lambda _region: Reading())
    return caught


def test_a_stack_whose_failed_deploy_left_it_update_rollback_failed_says_what_frees_it():
    # The update failed and so did its rollback: "resume once the cause is fixed" named no fix, and
    # the resume was refused on the stack's status; the read after the failure shows it already.
    since = time.time()
    caught = failing_sqs_stack_left("UPDATE_ROLLBACK_FAILED")
    freed = ("once WebordinarySQSStack takes a deploy again: CloudFormation shows it UPDATE_ROLLBACK_FAILED: its last "
             "update failed and so did the rollback")
    message = str(caught.value)
    assert f"to resume {freed}" in message, message
    assert "aws cloudformation continue-update-rollback --stack-name WebordinarySQSStack --region us-west-2" in message
    summary = latest(ARTIFACT_KEY, since)
    assert "continue-update-rollback --stack-name WebordinarySQSStack" in summary, summary


def test_a_stack_cloudformation_still_changes_after_cdk_failed_says_to_resume_once_it_is_done():
    # cdk gave up while CloudFormation went on (its credentials expired in a long deploy, cdk was
    # killed): "resume once the cause is fixed" sent a person to resume at once, refused because
    # the stack was still IN_PROGRESS; the read after the failure shows it already.
    since = time.time()
    caught = failing_sqs_stack_left("UPDATE_IN_PROGRESS",
                                    "ExpiredToken: the security token included in the request is expired")
    when = ("once the cause is fixed and WebordinarySQSStack is no longer IN_PROGRESS in CloudFormation (it shows "
            "it UPDATE_IN_PROGRESS: cdk stopped, CloudFormation did not)")
    message = str(caught.value)
    assert f"to resume {when}: run deploy_infrastructure again with from_stack='WebordinarySQSStack'" in message, \
        message
    summary = latest(ARTIFACT_KEY, since)
    assert f"Resume with `from_stack='WebordinarySQSStack'` {when}." in summary, summary


def test_an_artifact_the_api_refuses_never_replaces_what_the_run_says_or_stops_it(monkeypatch, caplog):
    # Made bare, a refused artifact replaced the error saying what was deployed and how to resume
    # with the API's own; after every stack deployed, it failed the run before the checklist ran.
    import flows.infra

    def unavailable(**_):
        raise RuntimeError("the artifact API answered 503")

    monkeypatch.setattr(flows.infra, "create_markdown_artifact", unavailable)
    failing = FakeInfraDeployer(WEBORDINARY, failing={"WebordinarySQSStack": "Resource limit exceeded"})
    with pytest.raises(InfraDeployFailed, match="from_stack='WebordinarySQSStack'"):
        deploy_on(failing, lambda _app: Passing())
    checked = []

    class Recording(Passing):
        def check(self) -> Checklist:
            checked.append(1)
            return super().check()

    result = deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: Recording())
    assert checked and result.checklist is not None and result.checklist.passed
    assert verify_on(Passing()).passed
    # Each deploy's two (its own and the checklist's: the failed one's "not checked"), one before each stack's
    # deploy (five, then eight), verify's.
    assert caplog.text.count("artifact could not be created: the artifact API answered 503") == 5 + 5 + 8


def test_a_deploy_failing_with_no_message_says_the_exception_and_where():
    # An error with no words of its own out of the deploy (a timeout): the run's error and the
    # stack's row said "TimeoutError: " and nothing.
    class Unanswered(FakeInfraDeployer):
        def deploy(self, stack, *, timeout_seconds, on_line=None):
            if stack == "WebordinarySQSStack":
                raise TimeoutError()
            return super().deploy(stack, timeout_seconds=timeout_seconds, on_line=on_line)

    since = time.time()
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(Unanswered(WEBORDINARY), None)
    said = "TimeoutError with no message, raised at tests/flows/test_infra_flow.py:"
    assert f"stack WebordinarySQSStack failed to deploy: {said}" in str(caught.value), caught.value
    assert "TimeoutError: " not in str(caught.value)
    assert said in latest(ARTIFACT_KEY, since)


def test_a_failed_stacks_row_in_the_artifact_stays_one_row_whatever_cdk_said():
    """The failed stack's detail is what cdk (or CloudFormation through it) said: its cell turned
    "|" into "/" and line feeds into spaces only, so a carriage return ended the row, a backslash
    before a "|" split it, and cdk's colour codes reached the Prefect UI as they were."""
    since = time.time()
    said = 'Template error: pattern "a\\|b" is invalid\r| 9 | `Forged` | deployed | 1.0 | |\x1b[31m'
    with pytest.raises(InfraDeployFailed):
        deploy_on(FakeInfraDeployer(WEBORDINARY, failing={"WebordinarySQSStack": said}), None)
    rows = [line for line in latest(ARTIFACT_KEY, since).splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[1] for row in rows[1:]] == [f"`{stack}`" for stack in STACKS], rows
    (failed,) = [row for row in rows if row.startswith("| 5 |")]
    assert "\x1b" not in failed and "\\x1b[31m" in failed, failed
    # Every "|" of cdk's text escaped (an odd number of backslashes before it): five cells.
    assert len(re.split(r"(?<!\\)(?:\\\\)*\|", failed)) == 7, failed


def test_a_deploy_stopped_at_its_timeout_says_in_the_artifact_to_wait_for_cloudformation():
    # The artifact said to resume "once the cause is fixed" while CloudFormation was still at it.
    from rollway.infra import StackDeployFailed

    class Slow(FakeInfraDeployer):
        def deploy(self, stack, *, timeout_seconds, on_line=None):
            if stack == "WebordinarySQSStack":
                raise StackDeployFailed(stack, "cdk did not finish within 60 s and was stopped", timed_out=True)
            return super().deploy(stack, timeout_seconds=timeout_seconds, on_line=on_line)

    since = time.time()
    with pytest.raises(InfraDeployFailed, match="wait until its stack is no longer IN_PROGRESS") as caught:
        deploy_on(Slow(WEBORDINARY), None)
    # Its last line said "to resume once it is fixed", right after saying there was nothing to fix, only a wait.
    # And nothing said how to give a stack that takes longer (a CloudFront distribution, a database: 40 minutes)
    # more time: resumed as told, it was stopped at the same timeout again.
    assert str(caught.value).endswith(
        "to resume once WebordinarySQSStack is no longer IN_PROGRESS in CloudFormation (cdk was stopped at "
        "stack_timeout_seconds, CloudFormation was not), with a larger stack_timeout_seconds if it needs longer: run "
        "deploy_infrastructure again with from_stack='WebordinarySQSStack' and the "
        f"same stacks ({', '.join(STACKS)}); the stacks before it are not deployed again (a run without from_stack "
        "deploys them again too: cdk changes nothing in one the app has not changed since it was deployed, but deploys "
        "to it whatever the app, or its context, changed since, a fix included)"), caught.value
    assert "once it is fixed" not in str(caught.value)
    assert ("Resume with `from_stack='WebordinarySQSStack'` once WebordinarySQSStack is no longer IN_PROGRESS in "
            "CloudFormation (cdk was stopped at stack_timeout_seconds, CloudFormation was not), with a larger "
            "stack_timeout_seconds if it needs longer.") in latest(ARTIFACT_KEY, since)


def test_a_run_interrupted_during_a_deploy_says_where_it_stands_and_how_to_resume(caplog):
    # Ctrl-C raises a KeyboardInterrupt in the deploy, and cancelling the run from the UI
    # Prefect's TerminationSignal (which then ends the process, so not raised here); either way
    # cdk is killed and CloudFormation goes on with the stack.
    class Cancelled(FakeInfraDeployer):
        def deploy(self, stack, **kwargs):
            if stack == "WebordinarySQSStack":
                raise KeyboardInterrupt
            return super().deploy(stack, **kwargs)

    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        deploy_on(Cancelled(WEBORDINARY), None)
    assert (f"interrupted while deploying WebordinarySQSStack: cdk was stopped, but CloudFormation may still be "
            f"working on it. Deployed in this run: {', '.join(STACKS[:4])}; not deployed: {', '.join(STACKS[5:])}"
            in caplog.text)
    assert "from_stack='WebordinarySQSStack'" in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert "stopped at WebordinarySQSStack" in summary and "| 5 | `WebordinarySQSStack` | interrupted |" in summary
    # As the log says: not "once the cause is fixed" (nothing failed), but once CloudFormation is done.
    assert ("Resume with `from_stack='WebordinarySQSStack'` once WebordinarySQSStack is no longer IN_PROGRESS"
            in summary), summary
    assert "| 4 | `WebordinaryALBStack` | deployed |" in summary


def test_a_deploy_whose_cdk_was_asked_to_stop_is_said_interrupted_not_failed(caplog):
    """A cancel's (or a shutdown's) SIGTERM reaching cdk ends the deploy with cdk's exit, an
    Exception: the stack's row said "failed", and the resume waited "once the cause is fixed",
    though nothing had failed and the reason itself said the run was cancelled."""
    from rollway.infra import StackDeployFailed

    reason = ("cdk was interrupted by SIGTERM before it finished: something asked it to stop (the run cancelled, "
              "or the worker or its machine shutting down)")

    class Stopped(FakeInfraDeployer):
        def deploy(self, stack, **kwargs):
            if stack == "WebordinarySQSStack":
                raise StackDeployFailed(stack, reason, (), interrupted=True)
            return super().deploy(stack, **kwargs)

    since = time.time()
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(Stopped(WEBORDINARY), None)
    said = str(caught.value)
    assert said.startswith(f"stack WebordinarySQSStack was interrupted while cdk deployed it: {reason}"), said
    assert "failed" not in said.splitlines()[0]
    assert ("to resume once WebordinarySQSStack is no longer IN_PROGRESS in CloudFormation (cdk was stopped, "
            "CloudFormation was not): run deploy_infrastructure again with from_stack='WebordinarySQSStack'") in said
    assert "once the cause is fixed" not in said
    summary = latest(ARTIFACT_KEY, since)
    assert "| 5 | `WebordinarySQSStack` | interrupted |" in summary, summary
    assert ("Resume with `from_stack='WebordinarySQSStack'` once WebordinarySQSStack is no longer IN_PROGRESS in "
            "CloudFormation (cdk was stopped, CloudFormation was not).") in summary, summary


def test_while_a_stack_deploys_the_artifact_says_where_to_resume_should_the_worker_die():
    """A worker killed during a deploy (OOM, a node gone) runs no code: the key's newest artifact was an earlier
    run's ("deployed", or "stopped at" another stack), read as this run's. Written before each deploy, it says
    which stack was being deployed and how to resume there."""
    seen: dict[str, str] = {}
    since = time.time()

    class Watched(FakeInfraDeployer):
        def deploy(self, stack, **kwargs):
            if stack == "WebordinarySQSStack":
                seen[stack] = latest(ARTIFACT_KEY, since)
            return super().deploy(stack, **kwargs)

    deploy_on(Watched(WEBORDINARY), None, already_deployed=[])
    summary = seen["WebordinarySQSStack"]
    assert summary.startswith("# Infrastructure: deploying WebordinarySQSStack"), summary
    assert "| 4 | `WebordinaryALBStack` | deployed |" in summary, summary
    assert "| 5 | `WebordinarySQSStack` | not deployed |" in summary, summary
    assert ("If the run ended here with no other word (its worker stopped), resume with "
            "`from_stack='WebordinarySQSStack'` once WebordinarySQSStack is no longer IN_PROGRESS in CloudFormation."
            in summary), summary
    assert latest(ARTIFACT_KEY, since).startswith("# Infrastructure deployed")


def test_a_run_interrupted_during_a_deploy_still_says_which_stacks_before_it_were_up_to_date():
    """Nothing is read from CloudFormation while the run stops; cdk's word on the stacks deployed before
    is what there is, and the artifact a person resumes from said it until the rows took it from the
    reads made once the deploys were done, which an interrupted run never makes."""
    class UpToDateThenCancelled(FakeInfraDeployer):
        def deploy(self, stack, **kwargs):
            if stack == "WebordinarySQSStack":
                raise KeyboardInterrupt
            return super().deploy(stack, **kwargs).model_copy(update={"unchanged": stack != "WebordinaryEFSStack"})

    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        deploy_on(UpToDateThenCancelled(WEBORDINARY), None)
    summary = latest(ARTIFACT_KEY, since)
    assert ("| 1 | `WebordinaryECRStack` | deployed | 0.0 | no changes (the stack was up to date: cdk said so; "
            "CloudFormation's state of it was not read); ") in summary, summary
    assert "| 3 | `WebordinaryEFSStack` | deployed | 0.0 | arn:" in summary, summary


@pytest.mark.parametrize("toolkit", ["CDKToolkit", "OrgToolkit"])
def test_a_run_interrupted_during_a_bootstrap_says_where_it_stands(caplog, toolkit):
    # As during a deploy: cdk is stopped, CloudFormation goes on with the toolkit stack, and the
    # key's newest artifact was still an earlier run's "deployed".
    def bootstrap(_env, _progress):
        raise KeyboardInterrupt

    since = time.time()
    deployer = with_toolkit(toolkit)
    with pytest.raises(KeyboardInterrupt):
        deploy_on(deployer, None, bootstrap=bootstrap)
    assert deployer.calls == ["list"]
    assert ("interrupted while bootstrapping aws://123456789012/us-west-2: cdk was stopped, but CloudFormation may "
            f"still be working on its {toolkit} stack. No stack was deployed") in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert "stopped at cdk bootstrap of aws://123456789012/us-west-2" in summary
    assert "| 1 | `WebordinaryECRStack` | not deployed |" in summary
    assert f"Run it again once the {toolkit} stack of aws://123456789012/us-west-2 is no longer IN_PROGRESS" in summary


def test_a_run_cancelled_while_synthesizing_says_nothing_was_deployed_and_to_run_it_again(caplog):
    # Cancelled from the UI (Prefect's TerminationSignal, which then ends the process, so not raised
    # here) or Ctrl-C while cdk synthesized (minutes for an app bundling its assets): the run ended
    # with no word, and the key's newest artifact was still an earlier run's "deployed".
    class Cancelled(FakeInfraDeployer):
        def list_stacks(self, on_line=None):
            raise KeyboardInterrupt

    since = time.time()
    deployer = Cancelled(WEBORDINARY)
    with pytest.raises(KeyboardInterrupt):
        deploy_on(deployer, None, from_stack="WebordinarySQSStack", already_deployed=["SharedVpc"])
    assert deployer.deployed == []
    assert ("interrupted while synthesizing the CDK app: cdk synth was stopped and no stack was deployed in this run "
            f"(asked: {', '.join(STACKS)}). Run deploy_infrastructure again with from_stack='WebordinarySQSStack' "
            "and already_deployed=['SharedVpc']: it starts over with the synth") in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: stopped at cdk synth"), summary
    assert "| 1 | `WebordinaryECRStack` | not deployed |" in summary
    assert ("Resume with `from_stack='WebordinarySQSStack'` and `already_deployed=['SharedVpc']` (nothing was "
            "deployed; cdk was stopped).") in summary


class _StatusesInterrupted:
    """CloudFormation's answer never comes: Ctrl-C (or a cancel from the UI) while it is read."""

    def status(self, name):
        raise KeyboardInterrupt


@pytest.mark.parametrize("kwargs, read, again, resume", [
    # A resume reads the stacks before from_stack.
    ({"from_stack": "WebordinarySQSStack"}, ", ".join(STACKS[:4]),
     "with from_stack='WebordinarySQSStack'", "Resume with `from_stack='WebordinarySQSStack'` "),
    # A run given already deployed stacks reads them.
    ({"requested": STACKS[1:], "already_deployed": ["WebordinaryECRStack"]}, "WebordinaryECRStack",
     "with already_deployed=['WebordinaryECRStack']", "Run it again with `already_deployed=['WebordinaryECRStack']` "),
], ids=["resume", "already-deployed"])
def test_a_run_interrupted_while_reading_the_stacks_statuses_says_nothing_was_deployed(caplog, kwargs, read, again,
                                                                                         resume):
    # The run ended with no word: the key's newest artifact was still an earlier run's, a
    # "deployed" or a "stopped at" naming another stack, read as this run's.
    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    with pytest.raises(KeyboardInterrupt):
        deploy_on(deployer, None, statuses=lambda _region: _StatusesInterrupted(),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"), **kwargs)
    assert deployer.calls == ["list"]
    assert (f"interrupted while reading the CloudFormation status of {read} (DescribeStacks): no stack was deployed "
            f"or bootstrapped in this run. Run deploy_infrastructure again {again}") in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith(f"# Infrastructure: stopped at reading the CloudFormation status of {read}"), summary
    assert "| `WebordinaryMonitoringStack` | not deployed |  | interrupted before any deploy |" in summary
    assert f"{resume}(nothing was deployed or bootstrapped)." in summary


@pytest.mark.parametrize("stop, said, shown", [
    # Ctrl-C (or a cancellation) while the checklist read AWS, every stack deployed.
    (KeyboardInterrupt, "interrupted during the pre-deployment checklist", "was interrupted"),
    # An error out of the checklist itself (a malformed answer, a defect): the run ended on its traceback.
    (KeyError("StackStatus"), "the pre-deployment checklist could not run (KeyError: 'StackStatus')", "could not run"),
], ids=["interrupted", "error"])
def test_a_checklist_that_does_not_finish_after_the_deploys_says_every_stack_is_deployed(caplog, stop, said, shown):
    # Nothing said that nothing was left to deploy, the key's newest artifact was an earlier run's,
    # and a person re-ran every deploy to see the checklist.
    class Unfinished:
        def check(self):
            raise stop

    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY)
    with pytest.raises(type(stop) if isinstance(stop, BaseException) else stop):
        deploy_on(deployer, lambda _app: Unfinished())
    assert deployer.deployed == list(STACKS)
    assert (f"{said}: every stack of the plan is deployed ({', '.join(STACKS)}), nothing is left to deploy. Check "
            "with verify_infrastructure (reads only, no deploy)") in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure deployed, checklist unfinished"), summary
    assert "| 8 | `WebordinaryMonitoringStack` | deployed |" in summary
    assert (f"The pre-deployment checklist {shown}, after every stack of the plan deployed: nothing is left to "
            "deploy. Check with `verify_infrastructure` (reads only).") in summary


def test_verify_interrupted_says_nothing_was_checked_in_place_of_an_earlier_runs_verdict(aws, caplog):
    class Interrupted:
        def check(self):
            raise KeyboardInterrupt

    deployed_stacks(aws)
    inbox(aws)
    verify_on(checker_for(aws.get_client, aws.targets))  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        verify_on(Interrupted())
    assert ("interrupted while the checklist read AWS: the checklist did not finish, nothing was checked"
            in caplog.text)
    assert latest(CHECKLIST_ARTIFACT_KEY, since).startswith("# Pre-deployment checklist interrupted")


def test_a_verify_that_could_not_check_says_so_in_place_of_an_earlier_runs_verdict(aws, tmp_path):
    """A verify_infrastructure refused (its app directory mistyped) or failing before its items
    (the checklist's reader raised) wrote no artifact: the key's newest was still an earlier run's
    "Pre-deployment checklist passed", read in the UI as this run's verdict."""
    class Broken:
        def check(self):
            raise RuntimeError("the checklist's reader broke")

    blocks = saved_blocks(aws, "verify")
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(InfraRefused, match="not a directory"):
        verify_infrastructure(cdk_app_dir=str(tmp_path / "nope"))
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked"), said
    assert "is not a directory" in said and "Nothing was checked" in said

    since = time.time()
    with pytest.raises(RuntimeError, match="reader broke"):
        verify_on(Broken())
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked") and "reader broke" in said, said

    # A checklist with failed items keeps its own verdict: the items, not "not checked".
    since = time.time()
    with pytest.raises(ChecklistFailed):
        verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks)
    assert latest(CHECKLIST_ARTIFACT_KEY, since).startswith("# Pre-deployment checklist FAILED")


@pytest.mark.parametrize("stop, said", [
    (KeyboardInterrupt, "# Pre-deployment checklist interrupted\n\nThe run was interrupted during the pre-deployment "
                        "checklist: nothing was checked (every stack of the plan is deployed: nothing is left to "
                        "deploy). Check with `verify_infrastructure` (reads only, no deploy)."),
    (RuntimeError("the checklist's reader broke"),
     "# Pre-deployment checklist not checked\n\n**Why:** RuntimeError: the checklist's reader broke\n\n**Nothing was "
     "checked** (every stack of the plan is deployed: nothing is left to deploy). Fix the cause above and check with "
     "`verify_infrastructure` (reads only, no deploy)."),
], ids=["interrupted", "error"])
def test_a_deploys_checklist_that_did_not_finish_says_nothing_was_checked_in_place_of_an_earlier_verdict(stop, said):
    """A deploy's checklist interrupted or failing wrote in its deployment artifact alone: the
    checklist key's newest stayed an earlier run's "passed", read as the deploy's verdict."""
    class Unfinished:
        def check(self):
            raise stop

    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(type(stop) if isinstance(stop, BaseException) else stop):
        deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: Unfinished())
    assert latest(CHECKLIST_ARTIFACT_KEY, since) == said


def test_a_deploy_whose_checklist_reader_is_refused_says_nothing_was_checked_in_place_of_an_earlier_verdict(aws):
    # The reader is made before the first deploy; refused (a checked stack the app places in no
    # account), the run wrote "refused, nothing deployed" under its own key alone.
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = AppStacks(dependencies=deployer.app.dependencies,
                             environments={"WebordinaryMonitoringStack": "aws://12345/us-west-2"})
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(PlanRefused):
        deploy_on(deployer, lambda app: checker_for(aws.get_client, aws.targets, app=app, home=HOME),
                  requested=STACKS[:5])
    assert deployer.calls == ["list"]
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked\n\n**Why:** PlanRefused: "), said
    assert "WebordinaryMonitoringStack ('aws://12345/us-west-2')" in said, said
    assert said.endswith("**Nothing was checked** (and nothing was deployed: the run stopped before its first "
                         "deploy). Fix the cause above and run `deploy_infrastructure` again."), said
    assert latest(ARTIFACT_KEY, since).startswith("# Infrastructure: refused, nothing deployed")


class _Interrupted(FakeInfraDeployer):
    """Ctrl-C (or a cancellation) while cdk deploys WebordinarySQSStack."""

    def deploy(self, stack, **kwargs):
        if stack == "WebordinarySQSStack":
            raise KeyboardInterrupt
        return super().deploy(stack, **kwargs)


@pytest.mark.parametrize("deployer, stop, heading, stopped", [
    (lambda: FakeInfraDeployer(WEBORDINARY, failing={"WebordinarySQSStack": "Resource limit exceeded"}),
     InfraDeployFailed, "# Pre-deployment checklist not checked\n\n**Why:** ", "WebordinarySQSStack failed"),
    (lambda: _Interrupted(WEBORDINARY), KeyboardInterrupt,
     "# Pre-deployment checklist interrupted\n\nThe run was interrupted while deploying WebordinarySQSStack: ",
     "WebordinarySQSStack was interrupted"),
], ids=["failed", "interrupted"])
def test_a_deploy_stopped_before_its_checklist_says_the_earlier_verdict_no_longer_holds(deployer, stop, heading,
                                                                                       stopped):
    """A deploy that changed stacks, then stopped at a later one, wrote nothing under the checklist's
    key: its newest stayed an earlier run's "passed", though the stacks it described had changed."""
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(stop):
        deploy_on(deployer(), lambda _app: Passing())
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith(heading), said
    assert f"this run changed {', '.join(STACKS[:4])}, and {stopped}" in said, said
    assert "an earlier verdict no longer describes them" in said, said
    assert ("heck with `verify_infrastructure` (reads only) or resume with `deploy_infrastructure` and "
            "from_stack='WebordinarySQSStack'") in said, said

    # A run refused before any deploy changed nothing: the key keeps its newest verdict.
    verify_on(Passing())
    since = time.time()
    with pytest.raises(PlanRefused):
        deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: Passing(), requested=["WebordinarySQSStak"])
    assert latest(CHECKLIST_ARTIFACT_KEY, since - 5).startswith("# Pre-deployment checklist passed")


class _OnCloudFormation(FakeInfraDeployer):
    """cdk over the embedded CloudFormation: a stack of ``changes`` is created or updated there as
    it deploys; any other deploys as it is (cdk's "no changes"). One of ``failing`` fails after
    that: CloudFormation changed it if it is in ``changes``, else cdk failed before asking it (a
    synth, asset or credentials error)."""

    def __init__(self, cloudformation, changes=(), failing=None):
        super().__init__(WEBORDINARY, failing=failing, already=STACKS)
        self.cloudformation, self.changes, self.version = cloudformation, set(changes), 0

    def deploy(self, stack, **kwargs):
        if stack in self.changes:
            self.version += 1
            body = json.dumps({"Resources": {f"Topic{self.version}": {"Type": "AWS::SNS::Topic"}}})
            exists = [s["StackName"] for s in self.cloudformation.describe_stacks()["Stacks"]]
            (self.cloudformation.update_stack if stack in exists else self.cloudformation.create_stack)(
                StackName=stack, TemplateBody=body)
        return super().deploy(stack, **kwargs)


def _events_refused(cloudformation, stack):
    """DescribeStackEvents of ``stack`` refused (AccessDenied), for a ``with`` block."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    def refused(params, **_):
        if f":stack/{stack}/" in params.get("StackName", ""):
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DescribeStackEvents")

    return on_operation(cloudformation, "before-parameter-build", refused, operation="DescribeStackEvents")


def _read_by(aws):
    from rollway.aws.cloudformation import CloudFormationStacks

    return lambda _region: CloudFormationStacks(aws.get_client("cloudformation"))


def test_a_deploy_with_verify_off_that_changed_stacks_says_the_earlier_verdict_no_longer_holds(aws):
    """verify=False wrote nothing under the checklist's key: its newest stayed an earlier run's
    "passed", read as describing the stacks this run had just changed."""
    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    changes = ("WebordinarySQSStack", "WebordinaryMonitoringStack")
    deploy_on(_OnCloudFormation(cloudformation, changes=changes), None, statuses=_read_by(aws))
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked\n\n**Why:** `verify` was off"), said
    assert ("(this run changed WebordinarySQSStack, WebordinaryMonitoringStack: an earlier verdict no longer "
            "describes them). Check with `verify_infrastructure` (reads only, no deploy).") in said, said
    assert "WebordinaryECRStack" not in said, said  # deployed with no change

    # Every stack deployed as it was (cdk's "no changes"): the verdict still describes them.
    verify_on(Passing())
    since = time.time()
    deploy_on(_OnCloudFormation(cloudformation), None, statuses=_read_by(aws))
    assert latest(CHECKLIST_ARTIFACT_KEY, since - 5).startswith("# Pre-deployment checklist passed")


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
def test_a_stack_whose_events_cannot_be_read_is_not_known_to_have_changed_and_the_others_are_judged_alone(
        aws, caplog, verify):
    """DescribeStackEvents refused for one stack (a policy scoped to some stacks, a throttle past
    the retries) left every stack of its region unread: "this run changed" named all eight,
    though CloudFormation showed one moved, and said of the unread one what no read had shown."""
    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    unread = "WebordinaryMonitoringStack"
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    deployer = _OnCloudFormation(cloudformation, changes=["WebordinarySQSStack"])
    with _events_refused(cloudformation, unread):
        if verify:  # stopped at the unread stack: the checklist never ran
            deployer.failing = {unread: "Failed to publish asset"}
            with pytest.raises(InfraDeployFailed):
                deploy_on(deployer, lambda _app: Passing(), statuses=_read_by(aws))
        else:
            deploy_on(deployer, None, statuses=_read_by(aws))
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked\n\n**Why:** "), said
    assert "this run changed WebordinarySQSStack" in said and "WebordinaryECRStack" not in said, said
    assert (f"whether it changed {unread} is not known: CloudFormation's state of it could not be read (the run's "
            "log says why)") in said, said
    assert f"could not read the CloudFormation state of {unread} in us-west-2 (" in caplog.text, caplog.text
    assert "could not read the CloudFormation state of WebordinaryECRStack" not in caplog.text, caplog.text


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
def test_a_stack_updated_again_counts_as_changed_though_its_status_and_last_update_read_the_same(aws, verify):
    """An update of a stack already UPDATE_COMPLETE leaves it UPDATE_COMPLETE, and the embedded
    CloudFormation (moto) never sets LastUpdatedTime: read as unchanged, it was left out of "not
    checked", and a run whose only change it was left an earlier "passed" the key's newest."""
    deployed_stacks(aws)
    deployer = _OnCloudFormation(aws.get_client("cloudformation"), changes=["WebordinarySQSStack"])
    deploy_on(deployer, None, statuses=_read_by(aws))  # CREATE_COMPLETE -> UPDATE_COMPLETE
    assert aws.get_client("cloudformation").describe_stacks(StackName="WebordinarySQSStack")["Stacks"][0][
        "StackStatus"] == "UPDATE_COMPLETE"
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    if verify:  # stopped at a later stack: the checklist never ran
        deployer.failing = {"WebordinaryMonitoringStack": "Failed to publish asset"}
        with pytest.raises(InfraDeployFailed):
            deploy_on(deployer, lambda _app: Passing(), statuses=_read_by(aws))
    else:
        deploy_on(deployer, None, statuses=_read_by(aws))  # UPDATE_COMPLETE -> UPDATE_COMPLETE
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked\n\n**Why:** "), said
    assert "this run changed WebordinarySQSStack" in said, said


@pytest.mark.parametrize("verify", [True, False], ids=["verify", "no-verify"])
def test_a_stack_that_failed_before_cloudformation_changed_it_is_not_said_to_have_changed(aws, verify):
    """A stack whose cdk deploy failed before CloudFormation started (a synth or asset error)
    counted as changed: "not checked" said so of a stack that had not moved, and replaced a
    verdict that still held when nothing else had changed either."""
    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    checker = (lambda _app: Passing()) if verify else None
    failing = {"WebordinarySQSStack": "Failed to publish asset"}
    verify_on(Passing())  # an earlier run's "passed"
    since = time.time()
    with pytest.raises(InfraDeployFailed):
        deploy_on(_OnCloudFormation(cloudformation, changes=["WebordinaryECRStack"], failing=failing), checker,
                  statuses=_read_by(aws))
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked\n\n**Why:** "), said
    assert ("(this run changed WebordinaryECRStack; WebordinarySQSStack failed before CloudFormation changed it: "
            "an earlier verdict no longer describes WebordinaryECRStack)") in said, said

    # CloudFormation changed it before the failure: said so.
    since = time.time()
    with pytest.raises(InfraDeployFailed):
        deploy_on(_OnCloudFormation(cloudformation, changes=["WebordinarySQSStack"], failing=failing), checker,
                  statuses=_read_by(aws))
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert ("(this run changed no stack before it, and WebordinarySQSStack failed while cdk deployed it: an earlier "
            "verdict no longer describes them)") in said, said

    # Nothing moved at all: the earlier verdict still holds and stays the key's newest.
    verify_on(Passing())
    since = time.time()
    with pytest.raises(InfraDeployFailed):
        deploy_on(_OnCloudFormation(cloudformation, failing=failing), checker, statuses=_read_by(aws))
    assert latest(CHECKLIST_ARTIFACT_KEY, since - 5).startswith("# Pre-deployment checklist passed")


def test_resume_from_the_failed_stack_deploys_it_and_the_rest_only():
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    result = deploy_on(deployer, lambda _app: Passing(), from_stack="WebordinarySQSStack")
    assert deployer.calls == ["list", *(f"deploy {s}" for s in STACKS[4:])]
    assert [r.status for r in result.stacks] == ["skipped"] * 4 + ["deployed"] * 4


def test_a_resume_deploys_the_stacks_before_from_stack_cloudformation_does_not_show_deployed(aws, caplog):
    # The earlier run deployed the first four stacks; since then the EFS stack was never made (the
    # app gained it) and the ALB stack was deleted. CloudFormation says so; the resume listens.
    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation = aws.get_client("cloudformation")
    body = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    for stack in ("WebordinaryECRStack", "WebordinarySecretsStack", "WebordinaryALBStack"):
        cloudformation.create_stack(StackName=stack, TemplateBody=body)
    cloudformation.delete_stack(StackName="WebordinaryALBStack")
    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:2])
    result = deploy_on(deployer, None, from_stack="WebordinarySQSStack",
                       statuses=lambda region: CloudFormationStacks(aws.get_client("cloudformation")))
    assert deployer.calls == ["list", "deploy WebordinaryEFSStack", "deploy WebordinaryALBStack",
                              *(f"deploy {s}" for s in STACKS[4:])]
    assert [r.status for r in result.stacks] == ["skipped"] * 2 + ["deployed"] * 6
    assert [a.stack for a in result.added] == ["WebordinaryEFSStack", "WebordinaryALBStack"]
    assert "WebordinaryEFSStack is deployed too, though ordered before it: it does not exist" in caplog.text
    summary = latest(ARTIFACT_KEY, since)
    assert "## Deployed though before from_stack" in summary
    assert "- `WebordinaryEFSStack`: it does not exist" in summary
    assert "| 1 | `WebordinaryECRStack` | skipped |" in summary and "(CREATE_COMPLETE)" in summary
    assert "| 3 | `WebordinaryEFSStack` | deployed |" in summary


def test_a_resume_that_cannot_read_the_stacks_statuses_says_so_in_one_line_and_deploys_nothing(
        aws, independent_client):
    # DescribeStacks refused (a role without cloudformation:DescribeStacks): the run ended on
    # boto's bare "An error occurred (AccessDenied) when calling the DescribeStacks operation".
    from rollway.aws.cloudformation import CloudFormationStacks
    from tests.botocore_events import on_operation

    asked: list[str] = []

    def refuse(**_):
        asked.append("DescribeStacks")
        return SimpleNamespace(status_code=403, headers={}), {
            "Error": {"Code": "AccessDenied", "Message": "not authorized to perform: cloudformation:DescribeStacks"},
            "ResponseMetadata": {}}

    cloudformation = independent_client("cloudformation")
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    with on_operation(cloudformation, "before-call", refuse, operation="DescribeStacks"), \
            pytest.raises(AwsNotRead) as caught:
        deploy_on(deployer, None, from_stack="WebordinarySQSStack",
                  statuses=lambda _region: CloudFormationStacks(cloudformation),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"))
    assert deployer.calls == ["list"]  # no bootstrap, no deploy
    # Refused once: the read is not asked again two seconds later (it was, and refused again).
    assert asked == ["DescribeStacks"]
    # The action and the statement of the infrastructure policy granting it, as the checklist's
    # and cleanup's refusals name them (AWS's text alone left the statement to find).
    assert str(caught.value) == (
        f"could not read the CloudFormation status of {', '.join(STACKS[:4])} in us-west-2 (DescribeStacks), read to "
        "tell whether the stacks before from_stack are deployed: AWS refused cloudformation:DescribeStacks "
        "(AccessDenied: not authorized to perform: cloudformation:DescribeStacks): the role or user these credentials "
        "belong to (the worker's role, for a flow run) may not call it, and asking again cannot help; it is granted by "
        "deployments/iam-policy-infrastructure.json, statement DeployChecklistAndCleanupReadTheStacks: add that "
        "statement (with your names) to that role or user, then run again; nothing was deployed")


def test_a_resume_whose_stacks_statuses_cloudformation_does_not_answer_deploys_nothing_within_the_bound(
        silent_endpoint):
    # On the shared client (60 s per read, retried, and the task retried), the run waited minutes
    # before its first deploy, with no line saying why.
    from rollway.aws.cloudformation import CloudFormationStacks
    from tests.conftest import unanswering_client

    cloudformation = unanswering_client("cloudformation", silent_endpoint, HOME.region)
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    began = time.monotonic()
    with pytest.raises(AwsNotRead) as caught:
        deploy_on(deployer, None, from_stack="WebordinarySQSStack", read_seconds=1,
                  statuses=lambda _region: CloudFormationStacks(cloudformation),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"))
    assert time.monotonic() - began < 10
    assert deployer.calls == ["list"]  # no bootstrap, no deploy
    assert str(caught.value) == (
        f"could not read the CloudFormation status of {', '.join(STACKS[:4])} in us-west-2 (DescribeStacks), read to "
        "tell whether the stacks before from_stack are deployed: CloudFormation in us-west-2 did not answer within "
        "1 s; nothing was deployed")


def test_the_read_bound_is_one_parameter_of_both_flows_refused_out_of_range_before_any_aws_call(tmp_path):
    # Fixed at 30 s, a read over a slow link could not be given longer, nor a silent service less.
    from prefect.utilities.callables import parameter_schema

    for run in (verify_infrastructure, lambda **given: deploy_infrastructure(cdk_app_dir=str(tmp_path), **given)):
        for bad in (0, -1, 601):
            with pytest.raises(ParameterTypeError, match="read_timeout_seconds"):
                run(read_timeout_seconds=bad)
    for infra_flow in (verify_infrastructure, deploy_infrastructure):
        assert parameter_schema(infra_flow.fn).properties["read_timeout_seconds"]["default"] == 30
    # Called without the flows, the same bound is refused before anything is read.
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    with pytest.raises(ValueError, match="a read's bound must be more than 0 and at most 600 s, not 0"):
        deploy_on(deployer, None, from_stack="WebordinarySQSStack", read_seconds=0,
                  statuses=lambda _region: pytest.fail("read"))
    assert deployer.calls == []
    with pytest.raises(ValueError, match="a read's bound must be more than 0 and at most 600 s, not 900"):
        checker_for(lambda service: pytest.fail(f"{service} read"), Targets(), read_seconds=900)


def test_a_resume_whose_statuses_read_was_given_up_on_logs_nothing_once_the_run_has_failed(caplog):
    # The read left running in its thread was a task retried once: when CloudFormation failed it
    # at last, it logged its retry, and read again, into a run that had already failed.
    import threading

    from rollway.aws.cloudformation import CloudFormationStacks
    from tests import stray_requests
    from tests.conftest import unanswering_client, unanswering_endpoint

    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    before = set(threading.enumerate())
    with unanswering_endpoint() as endpoint:
        cloudformation = unanswering_client("cloudformation", endpoint, HOME.region)
        with pytest.raises(AwsNotRead):
            deploy_on(deployer, None, from_stack="WebordinarySQSStack", read_seconds=1,
                      statuses=lambda _region: CloudFormationStacks(cloudformation),
                      bootstrap=lambda *_: deployer.calls.append("bootstrap"))
        ended = time.time()
    # The endpoint is gone: the read left behind fails now, as it would once AWS gave up. Whatever
    # it does after that (a task's retry came 2 s after its failure) is done once its thread ends.
    left = stray_requests.wait_for(stray_requests.senders_started_since(before), 30)
    assert left == [], "the read given up on is still running"
    late = [r.getMessage() for r in caplog.records if r.created > ended]
    assert late == [], late


def test_a_stack_read_answered_after_its_bound_changes_nothing_the_run_judged_or_logs(caplog):
    """The read of a region given up on goes on in its thread: a stack whose events were refused
    had its status read there after all, written into the statuses the run's checks judge, and its
    "could not read" logged into the run after the run had said the region did not answer."""
    import threading

    from flows.infra import _read_states
    from rollway.cleanup import StackState

    release = threading.Event()

    class Late:
        def seen(self, name):
            raise RuntimeError("DescribeStackEvents refused")

        def state(self, name):
            release.wait(30)
            return StackState(name=name, status="UPDATE_ROLLBACK_FAILED")

    judged: dict = {}

    @flow
    def reading():
        stacks = ["WebordinarySQSStack"]
        return _read_states(lambda _region: Late(), stacks, {s: HOME for s in stacks}, HOME, 0.01,
                            status_only=judged)

    assert reading() == {}
    given_up = time.time()
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("rollway-read-CloudFormation"):
            thread.join(30)
    assert judged == {}  # what the checks of the statuses judged stays what the run read within the bound
    late = [r.getMessage() for r in caplog.records if r.created > given_up]
    assert late == [], late


def test_a_resume_over_a_stack_still_changing_is_refused_before_any_deploy():
    class Busy:
        def status(self, name):
            return "UPDATE_IN_PROGRESS" if name == "WebordinaryEFSStack" else "CREATE_COMPLETE"

    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    with pytest.raises(PlanRefused, match="WebordinaryEFSStack is UPDATE_IN_PROGRESS"):
        deploy_on(deployer, None, from_stack="WebordinarySQSStack", statuses=lambda _region: Busy(),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"))
    assert deployer.calls == ["list"]


@pytest.mark.parametrize("status, said", [
    ("UPDATE_IN_PROGRESS", "WebordinarySQSStack is UPDATE_IN_PROGRESS: CloudFormation is still working on it (cdk's "
                           "deploy would be refused); wait until it is no longer IN_PROGRESS, then run again (nothing "
                           "was deployed)"),
    # cdk has no way over these: CloudFormation refuses the update ("is in UPDATE_ROLLBACK_FAILED state and can not
    # be updated"), and over a stack a --no-rollback deploy left paused cdk asks to roll back first, which a run
    # with no terminal cannot answer. The run failed there after deploying the stacks before it, and said to
    # "resume once it is fixed", naming no fix.
    ("UPDATE_ROLLBACK_FAILED", "WebordinarySQSStack is UPDATE_ROLLBACK_FAILED: its last update failed and so did the "
                               "rollback, and CloudFormation takes no update until the rollback is finished: finish it "
                               "(aws cloudformation continue-update-rollback --stack-name WebordinarySQSStack "
                               "--region us-west-2;"),
    ("UPDATE_FAILED", "WebordinarySQSStack is UPDATE_FAILED: a deploy with --no-rollback left it paused half-way, and "
                      "cdk's deploy would ask to roll it back first, which this run cannot answer: roll it back (aws "
                      "cloudformation rollback-stack --stack-name WebordinarySQSStack --region us-west-2); then run "
                      "again (nothing was deployed)"),
    ("DELETE_FAILED", "WebordinarySQSStack is DELETE_FAILED: its deletion failed half-way, and CloudFormation takes no "
                      "update of it: delete it again (aws cloudformation delete-stack --stack-name WebordinarySQSStack "
                      "--region us-west-2 --retain-resources"),
    # cdk deletes a stack whose creation was rolled back before creating it again; one whose rollback failed
    # too, that deletion fails where the rollback did, and the run failed there, after the stacks before it.
    ("ROLLBACK_FAILED", "WebordinarySQSStack is ROLLBACK_FAILED: its creation failed and so did its rollback: cdk "
                        "would delete it before creating it again, which fails where the rollback did unless its "
                        "cause is gone; delete it (aws cloudformation delete-stack --stack-name WebordinarySQSStack "
                        "--region us-west-2"),
    # CloudFormation's own reason given too: which resource failed, and why.
    ("IMPORT_ROLLBACK_FAILED", "WebordinarySQSStack is IMPORT_ROLLBACK_FAILED (CloudFormation says: The following "
                               "resource(s) failed to roll back: [Queue]): an import of existing resources into it "
                               "failed and so did the rollback of that import, and CloudFormation takes no update of "
                               "it: find the resources whose rollback failed in its events (aws cloudformation "
                               "describe-stack-events --stack-name WebordinarySQSStack --region us-west-2)"),
])
@pytest.mark.parametrize("kwargs", [{"from_stack": "WebordinarySQSStack"}, {}])
def test_a_run_over_a_stack_to_deploy_cloudformation_takes_no_deploy_of_is_refused_before_any_deploy(
        kwargs, status, said):
    # A deploy stopped at its timeout leaves CloudFormation working on the stack; resumed at it at
    # once (or the run retried), cdk went over it and CloudFormation refused ("is in
    # UPDATE_IN_PROGRESS state and can not be updated"), after the stacks before it were deployed
    # again, with "resume once it is fixed" and nothing to fix.
    from rollway.cleanup import StackState

    class Reading:
        def status(self, name):
            return "CREATE_COMPLETE"

        def seen(self, name):
            stuck = name == "WebordinarySQSStack"
            return StackState(name=name, stack_id=f"id/{name}", status=status if stuck else "CREATE_COMPLETE",
                              status_reason="The following resource(s) failed to roll back: [Queue]"
                              if stuck and status == "IMPORT_ROLLBACK_FAILED" else None)

    since = time.time()
    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    with pytest.raises(PlanRefused) as caught:
        deploy_on(deployer, None, statuses=lambda _region: Reading(),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"), **kwargs)
    assert deployer.calls == ["list"]  # no bootstrap, no deploy
    assert said in str(caught.value), str(caught.value)
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: refused, nothing deployed") and "WebordinarySQSStack is" in summary


@pytest.mark.parametrize("kwargs", [{"from_stack": "WebordinarySQSStack"}, {}])
def test_a_run_over_a_stack_whose_creation_was_rolled_back_says_before_deploying_that_cdk_deletes_it(kwargs, caplog):
    # cdk deletes a ROLLBACK_COMPLETE stack and creates it again (its isCreationFailure): a resume
    # at the stack whose creation failed did so with no word, and the events saying why it failed
    # went with the deleted stack.
    from rollway.cleanup import StackState

    class Reading:
        def status(self, name):
            return "CREATE_COMPLETE"

        def seen(self, name):
            failed = name == "WebordinarySQSStack"
            return StackState(name=name, stack_id=f"arn:stack/{name}/1", status="ROLLBACK_COMPLETE" if failed
                              else "CREATE_COMPLETE",
                              status_reason="The following resource(s) failed to create: [Queue]." if failed else None)

    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:4])
    said = []
    deploy = deployer.deploy

    def deploying(stack, *args, **kwargs):  # what the run had said when its first deploy began
        said.append([r.getMessage() for r in caplog.records if r.levelname == "WARNING"])
        return deploy(stack, *args, **kwargs)

    deployer.deploy = deploying
    deploy_on(deployer, None, statuses=lambda _region: Reading(), **kwargs)
    assert "deploy WebordinarySQSStack" in deployer.calls
    warned = [m for m in said[0] if "ROLLBACK_COMPLETE" in m]
    assert warned == [
        "WebordinarySQSStack is ROLLBACK_COMPLETE (CloudFormation says: The following resource(s) failed to create: "
        "[Queue].): its creation failed and was rolled back, so cdk deletes it and creates it again; its events, "
        "which say why its creation failed, go with the deleted stack and are read by its stack id from then on "
        "(aws cloudformation describe-stack-events --stack-name arn:stack/WebordinarySQSStack/1 --region us-west-2)"
    ], said[0]


def test_a_stack_cloudformation_takes_no_deploy_of_is_refused_also_when_its_events_cannot_be_read(aws, caplog):
    """DescribeStackEvents refused for a stack (the documented policy grants it on Webordinary* stacks
    alone) left the stack out of the read before the first deploy, and with it out of the check of its
    status: cdk ran the stacks before it and then failed on the one CloudFormation takes no update of."""
    from tests.botocore_events import on_operation

    cloudformation = aws.get_client("cloudformation")
    deployed_stacks(aws)
    stuck = "WebordinarySQSStack"

    def rollback_failed(parsed, **_):
        for stack in parsed.get("Stacks", ()):
            if stack["StackName"] == stuck:
                stack["StackStatus"] = "UPDATE_ROLLBACK_FAILED"

    deployer = _OnCloudFormation(cloudformation)
    with _events_refused(cloudformation, stuck), \
            on_operation(cloudformation, "after-call", rollback_failed, operation="DescribeStacks"), \
            pytest.raises(PlanRefused) as caught:
        deploy_on(deployer, lambda _app: Passing(), statuses=_read_by(aws))
    assert deployer.calls == ["list"], deployer.calls  # no deploy
    said = str(caught.value)
    assert (f"{stuck} is UPDATE_ROLLBACK_FAILED: its last update failed and so did the rollback" in said
            and f"continue-update-rollback --stack-name {stuck} --region us-west-2" in said), said
    assert f"could not read the CloudFormation state of {stuck} in us-west-2 (" in caplog.text, caplog.text


class _ToolkitReading:
    """CloudFormation of one region where every stack to deploy is CREATE_COMPLETE, and the toolkit stack
    (CDKToolkit) is as ``toolkits`` (region -> status; None: there is none) says."""

    toolkits: dict = {}
    versions: dict = {}  # region -> the toolkit's BootstrapVersion output (none: 21)

    def __init__(self, region):
        self.region = region

    def bootstrap_version(self, name):
        return self.versions.get(self.region, 21)

    def seen(self, name):
        from rollway.cleanup import StackState

        return StackState(name=name, stack_id=f"id/{name}", status="CREATE_COMPLETE")

    def state(self, name):
        from rollway.cleanup import StackState

        assert name == "CDKToolkit", name
        return StackState(name=name, status=self.toolkits.get(self.region, "CREATE_COMPLETE"),
                          status_reason="User Initiated" if self.toolkits.get(self.region) else None)


def test_a_run_with_verify_off_interrupted_while_reading_after_its_deploys_says_no_checklist_was_interrupted(caplog):
    """Every stack deployed, then Ctrl-C while CloudFormation was read to tell which were up to date: with
    verify off, no checklist was to run, and none was "interrupted" or "unfinished"."""
    reads: list[str] = []

    class InterruptedAfter(_ToolkitReading):
        def seen(self, name):
            reads.append(name)
            if len(reads) > len(STACKS):  # the read once the deploys are done
                raise KeyboardInterrupt
            return super().seen(name)

    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        deploy_on(FakeInfraDeployer(WEBORDINARY), None, statuses=InterruptedAfter)
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure deployed\n"), summary
    assert "checklist" not in summary, summary
    assert "| 8 | `WebordinaryMonitoringStack` | deployed |" in summary, summary
    assert "every stack of the plan is deployed" in caplog.text, caplog.text
    assert "checklist was interrupted" not in caplog.text and "during the pre-deployment checklist" not in caplog.text
    # Whether the run changed them is not known: an earlier checklist's verdict is not read as describing them.
    assert latest(CHECKLIST_ARTIFACT_KEY, since).startswith("# Pre-deployment checklist not checked")


def _toolkit_app_deployer():
    """Webordinary's stacks, each requiring a toolkit (the default synthesizer's), the monitoring stack in eu-west-1."""
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = deployer.app.model_copy(update={
        "environments": {"WebordinaryMonitoringStack": "aws://123456789012/eu-west-1"},
        "bootstrap_versions": {stack: 6 for stack in STACKS}})
    return deployer


@pytest.mark.parametrize("toolkits, said, versions", [
    ({"eu-west-1": None}, "the CDK toolkit stack CDKToolkit of aws://123456789012/eu-west-1 does not exist, and "
                          "WebordinaryMonitoringStack needs it (cdk publishes its assets and checks its bootstrap "
                          "version through it): bootstrap it (cdk bootstrap aws://123456789012/eu-west-1", {}),
    ({"us-west-2": "DELETE_IN_PROGRESS"}, "the CDK toolkit stack CDKToolkit of aws://123456789012/us-west-2 is "
                                          "DELETE_IN_PROGRESS (CloudFormation says: User Initiated): CloudFormation is "
                                          "still working on it", {}),
    ({}, "the CDK toolkit stack CDKToolkit of aws://123456789012/eu-west-1 is at bootstrap version 5, and "
         "WebordinaryMonitoringStack requires version 6: bootstrap it again (cdk bootstrap aws://123456789012/eu-west-1",
     {"eu-west-1": 5}),
])
def test_a_toolkit_stack_the_deploys_cannot_use_refuses_the_run_before_the_first_deploy(toolkits, said, versions):
    # Without its toolkit stack (not bootstrapped, or being deleted), the first deploy going to that environment
    # failed with cdk's "Has the environment been bootstrapped?", after the stacks before it were deployed; with
    # one older than the stacks require, with "requires bootstrap stack version '6', found '5'".
    since = time.time()
    deployer = _toolkit_app_deployer()
    reading = type("Reading", (_ToolkitReading,), {"toolkits": toolkits, "versions": versions})
    with pytest.raises(PlanRefused) as caught:
        deploy_on(deployer, None, statuses=reading)
    assert deployer.calls == ["list"]  # no deploy
    assert said in str(caught.value), str(caught.value)
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: refused, nothing deployed") and said in summary, summary


def test_a_toolkit_stack_a_bootstrap_makes_or_that_cannot_be_read_lets_the_deploys_go(caplog):
    # Missing, but the run bootstraps its environment first: cdk bootstrap makes it.
    deployer = _toolkit_app_deployer()
    reading = type("Reading", (_ToolkitReading,), {"toolkits": {"eu-west-1": None}})
    deploy_on(deployer, None, statuses=reading,
              bootstrap=lambda env, _progress: deployer.calls.append(f"bootstrap {env.uri}"))
    assert deployer.calls[:3] == ["list", "bootstrap aws://123456789012/us-west-2",
                                  "bootstrap aws://123456789012/eu-west-1"]
    assert deployer.deployed == list(STACKS)
    assert "the CDK toolkit stack CDKToolkit of aws://123456789012/eu-west-1: does not exist" in caplog.text

    # Not read (a policy without DescribeStacks on it): said, and left to cdk.
    class Unreadable(_ToolkitReading):
        def state(self, name):
            raise RuntimeError("AccessDenied")

    deployer = _toolkit_app_deployer()
    deploy_on(deployer, None, statuses=Unreadable)
    assert deployer.deployed == list(STACKS)
    assert ("could not read the CDK toolkit stack CDKToolkit of aws://123456789012/us-west-2 (RuntimeError: "
            "AccessDenied): not checked before the deploys") in caplog.text, caplog.text


def test_every_stack_and_toolkit_cloudformation_stops_the_deploys_of_is_named_in_one_refusal():
    # Refused for the first kind found (a stack still changing), a person waited, ran again (synthesizing the app
    # again, minutes), and was refused for the next (another stack stuck, the toolkit missing).
    from rollway.cleanup import StackState

    class Reading(_ToolkitReading):
        toolkits = {"eu-west-1": None}

        def seen(self, name):
            status = {"WebordinaryEFSStack": "UPDATE_IN_PROGRESS", "WebordinarySQSStack": "DELETE_FAILED"}.get(name)
            return StackState(name=name, stack_id=f"id/{name}", status=status or "CREATE_COMPLETE")

    deployer = _toolkit_app_deployer()
    with pytest.raises(PlanRefused) as caught:
        deploy_on(deployer, None, statuses=Reading)
    assert deployer.calls == ["list"]
    said = str(caught.value)
    assert "WebordinaryEFSStack is UPDATE_IN_PROGRESS: CloudFormation is still working on it" in said, said
    assert "WebordinarySQSStack is DELETE_FAILED: its deletion failed half-way" in said, said
    assert "the CDK toolkit stack CDKToolkit of aws://123456789012/eu-west-1 does not exist" in said, said


def test_a_stack_named_as_already_deployed_that_is_not_is_refused_before_anything_runs(aws):
    from rollway.aws.cloudformation import CloudFormationStacks

    cloudformation = aws.get_client("cloudformation")
    body = '{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}'
    for stack in ("WebordinaryECRStack", "WebordinaryEFSStack"):
        cloudformation.create_stack(StackName=stack, TemplateBody=body)
    cloudformation.delete_stack(StackName="WebordinaryEFSStack")
    deployer = FakeInfraDeployer(WEBORDINARY)
    with pytest.raises(PlanRefused) as caught:
        deploy_on(deployer, None, requested=STACKS[3:], already_deployed=STACKS[:3],
                  statuses=lambda region: CloudFormationStacks(aws.get_client("cloudformation")),
                  bootstrap=lambda *_: deployer.calls.append("bootstrap"))
    assert deployer.calls == ["list"]  # no bootstrap, no deploy
    assert ("named as already deployed, but CloudFormation shows nothing deployed: WebordinarySecretsStack (does not "
            "exist), WebordinaryEFSStack (does not exist)") in str(caught.value)


def test_a_stack_of_another_account_named_as_already_deployed_is_taken_at_its_word(caplog):
    class Deployed:
        def status(self, name):
            return "CREATE_COMPLETE"

    deployer = pinned_deployer(already=STACKS[:2])
    deploy_on(deployer, None, requested=STACKS[2:], already_deployed=STACKS[:2], statuses=lambda _region: Deployed())
    assert deployer.calls == ["list", *(f"deploy {s}" for s in STACKS[2:])]
    assert ("WebordinarySecretsStack is in account 210987654321, whose stacks this run does not read: it is taken as "
            "already deployed, as named") in caplog.text
    assert "deployed again to be sure" not in caplog.text


def test_the_resume_hint_of_a_run_given_already_deployed_stacks_names_them(caplog):
    """The hint (error and artifact) said "from_stack=... and the same stacks" only: a resume
    without the run's already_deployed is refused when a stack of the plan depends on one of them."""
    class Deployed:
        def status(self, name):
            return "CREATE_COMPLETE"

    deployer = FakeInfraDeployer(WEBORDINARY, already=STACKS[:2], failing={"WebordinarySQSStack": "Resource limit"})
    since = time.time()
    with pytest.raises(InfraDeployFailed) as caught:
        deploy_on(deployer, None, requested=STACKS[2:], already_deployed=STACKS[:2], statuses=lambda _region: Deployed())
    assert (f"from_stack='WebordinarySQSStack' and the same stacks ({', '.join(STACKS[2:])}) and "
            f"already_deployed={list(STACKS[:2])!r}") in str(caught.value), str(caught.value)
    summary = latest(ARTIFACT_KEY, since)
    assert (f"Resume with `from_stack='WebordinarySQSStack'` and `already_deployed={list(STACKS[:2])!r}`"
            in summary), summary


def test_a_failed_checklist_fails_the_run_naming_the_items(aws):
    deployed_stacks(aws)
    inbox(aws)
    since = time.time()
    aws.get_client("cloudwatch").delete_dashboards(DashboardNames=[aws.targets.dashboard])
    queue = aws.targets.queues[0]
    sqs = aws.get_client("sqs")
    sqs.set_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName=queue.name)["QueueUrl"],
                             Attributes={"RedrivePolicy": ""})
    deployer = FakeInfraDeployer(WEBORDINARY)
    with pytest.raises(ChecklistFailed) as caught:
        deploy_on(deployer, lambda _app: checker_for(aws.get_client, aws.targets))
    assert deployer.deployed == list(STACKS)
    assert {i.name for i in caught.value.checklist.failed} == {aws.targets.dashboard, queue.name}
    assert f"- dashboard {aws.targets.dashboard}: " in str(caught.value)
    assert f"- queue {queue.name}: " in str(caught.value) and "2 of" in str(caught.value)
    # What comes next: not the whole deploy again to see the checklist.
    assert str(caught.value).endswith("every stack of the plan is deployed (8); once these are fixed, check again "
                                      "with verify_infrastructure (no deploy needed, unless a fix is one)")
    summary = latest(ARTIFACT_KEY, since)
    assert "checklist FAILED" in summary and f"❌ FAIL | queue | `{queue.name}`" in summary


def test_a_deploys_checklist_verdict_is_the_checklist_keys_newest_in_place_of_an_earlier_verify(aws):
    """A deploy's checklist was written in its deployment artifact alone: the checklist key's
    newest stayed an earlier verify_infrastructure's verdict, "FAILED" after a deploy that fixed
    it, or "passed" after a deploy whose checklist failed."""
    deployed_stacks(aws)
    with pytest.raises(ChecklistFailed):
        verify_on(checker_for(aws.get_client, aws.targets))  # an earlier verify: no confirmed subscriber
    inbox(aws)
    since = time.time()
    deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: checker_for(aws.get_client, aws.targets))
    passed = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert passed.startswith("# Pre-deployment checklist passed"), passed
    assert f"✅ pass | alert topic | `{aws.targets.alert_topic}` | 1 subscription(s)" in passed

    since = time.time()
    aws.get_client("cloudwatch").delete_dashboards(DashboardNames=[aws.targets.dashboard])
    with pytest.raises(ChecklistFailed):
        deploy_on(FakeInfraDeployer(WEBORDINARY), lambda _app: checker_for(aws.get_client, aws.targets))
    failed = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert failed.startswith("# Pre-deployment checklist FAILED"), failed
    assert f"❌ FAIL | dashboard | `{aws.targets.dashboard}`" in failed


def test_verify_alone_passes_on_the_provisioned_account(aws):
    deployed_stacks(aws)
    inbox(aws)
    since = time.time()
    assert verify_on(checker_for(aws.get_client, aws.targets)).passed
    assert "checklist passed" in latest(CHECKLIST_ARTIFACT_KEY, since)


def test_verify_alone_fails_naming_the_items(aws):
    deployed_stacks(aws)
    with pytest.raises(ChecklistFailed, match=f"alert topic {aws.targets.alert_topic}: it has no confirmed") as caught:
        verify_on(checker_for(aws.get_client, aws.targets))
    assert str(caught.value).endswith("\nonce these are fixed, run verify_infrastructure again")


def test_a_targets_stack_named_by_its_construct_id_fails_its_item_naming_its_cloudformation_name(aws):
    # The seed's `cdk deploy WebordinarySQSStack` names a construct id; the app gives that stack
    # another stackName. The plan refused such a name with the hint, but the checklist only said
    # "does not exist: deploy it", of a stack deployed under its other name.
    named = "prod-webordinary-sqs"
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in [*(s for s in STACKS if s != "WebordinarySQSStack"), named]:
        aws.get_client("cloudformation").create_stack(StackName=stack, TemplateBody=body)
    inbox(aws)
    app = AppStacks(dependencies={(named if s == "WebordinarySQSStack" else s): () for s in STACKS},
                    construct_ids={"WebordinarySQSStack": named})
    with pytest.raises(ChecklistFailed) as caught:
        verify_on(checker_for(aws.get_client, aws.targets, app=app, home=HOME))
    assert [(i.name, i.reason) for i in caught.value.checklist.failed] == [(
        "WebordinarySQSStack", "CloudFormation stack WebordinarySQSStack does not exist: that is the construct id of "
        f"the stack whose CloudFormation name is {named!r}: name stacks by their CloudFormation name in Targets.stacks")]


def test_a_targets_stack_the_app_does_not_define_fails_its_item_naming_the_stack_meant(aws):
    # A misspelt Targets.stacks entry failed "does not exist: deploy it (deploy_infrastructure)":
    # a deploy of the stacks asked for deployed them all again and failed the same item.
    for stack in STACKS:
        aws.get_client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(
            {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}))
    inbox(aws)
    misspelt = aws.targets.model_copy(update={"stacks": tuple(
        "WebordinarySQSStak" if s == "WebordinarySQSStack" else s for s in STACKS)})
    app = AppStacks(dependencies={s: () for s in STACKS})
    with pytest.raises(ChecklistFailed) as caught:
        verify_on(checker_for(aws.get_client, misspelt, app=app, home=HOME))
    assert [(i.name, i.reason) for i in caught.value.checklist.failed] == [(
        "WebordinarySQSStak", "CloudFormation stack WebordinarySQSStak does not exist, and the CDK app defines no "
        "stack of that name (did you mean 'WebordinarySQSStack'?): correct Targets.stacks, or "
        "deploy it from the app that defines it")]


# --- the flow itself: its parameters are refused before anything runs -----------------------


def test_a_bad_stack_name_is_refused_by_the_parameters(tmp_path):
    with pytest.raises(ParameterTypeError, match="stacks"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path), stacks=["not a stack!"])


def test_an_app_dir_without_cdk_json_is_refused(tmp_path):
    with pytest.raises(InfraRefused, match="no cdk.json"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path))
    with pytest.raises(InfraRefused, match="not a directory"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path / "nope"))


@pytest.mark.parametrize("run", [deploy_infrastructure, verify_infrastructure])
def test_a_blank_app_dir_is_refused_not_taken_for_the_workers_directory(tmp_path, monkeypatch, run):
    # "" is Path("."): the worker's working directory, whose CDK app (if it has one) was deployed,
    # or read, as if named; verify's own docstring said an empty one reads the targets' region.
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InfraRefused, match="cdk_app_dir is blank: give the directory of the CDK app's cdk.json"):
        run(cdk_app_dir="", cdk_executable="no-such-cdk")
    with pytest.raises(InfraRefused, match="cdk_app_dir is blank") as caught:
        run(cdk_app_dir="  ", cdk_executable="no-such-cdk")
    # verify reads without an app: a form's field cleared gives "", and leaving it unset is the way
    # out, where the refusal named only a directory to give. deploy needs one.
    unset = ", or leave it unset (every stack and resource is read in the targets' region)"
    assert str(caught.value).endswith(unset) is (run is verify_infrastructure), str(caught.value)


def test_a_relative_app_dir_not_found_says_where_it_was_looked_for(tmp_path, monkeypatch):
    # Relative to the worker's working directory, which the person starting the run does not see.
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InfraRefused) as caught:
        deploy_infrastructure(cdk_app_dir="infra")
    assert str(caught.value) == (f"cdk_app_dir 'infra' is not a directory (looked for {tmp_path / 'infra'}: a relative "
                                 "path is taken from the working directory of the process running the flow)")


def test_a_missing_cdk_executable_is_refused(tmp_path):
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    with pytest.raises(ToolMissing, match="no-such-cdk"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path), cdk_executable="no-such-cdk")


def test_a_cdk_executable_that_is_not_cdk_is_refused_before_any_aws_call(tmp_path):
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    with pytest.raises(InfraRefused, match="cdk_executable 'true': .* is not the AWS CDK CLI"):
        # No such credentials block: had it got as far as loading it (or calling AWS), it would say so.
        deploy_infrastructure(cdk_app_dir=str(tmp_path), cdk_executable="true", aws_credentials_block="no-such-aws")


@pytest.mark.parametrize("run", [deploy_infrastructure, verify_infrastructure])
def test_a_malformed_cdk_json_is_refused_naming_its_line_before_any_aws_call_or_cdk_run(tmp_path, run):
    # cdk synth refused it only after STS had been asked for the account, in node's words.
    (tmp_path / "cdk.json").write_text('{\n  "app": "python3 app.py",\n  "context": {"prefix": "It",}\n}\n')
    with pytest.raises(InfraRefused) as caught:
        # No such blocks, and a cdk that is not one: had it got as far as either, it would say so.
        run(cdk_app_dir=str(tmp_path), cdk_executable="true", targets_block="no-such-targets",
            aws_credentials_block="no-such-aws")
    assert str(caught.value) == (
        f"cdk_app_dir {str(tmp_path)!r}: {tmp_path / 'cdk.json'} is not valid JSON: line 3, column 30: Expecting "
        'property name enclosed in double quotes, after the key "prefix"')


def test_duplicate_stacks_are_refused_before_the_app_is_read(tmp_path):
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    with pytest.raises(PlanRefused, match="more than once"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path), cdk_executable="true",
                              stacks=["WebordinarySQSStack", "WebordinarySQSStack"])


def test_a_timeout_below_a_second_is_refused(tmp_path):
    with pytest.raises(ParameterTypeError, match="stack_timeout_seconds"):
        deploy_infrastructure(cdk_app_dir=str(tmp_path), stack_timeout_seconds=0)


def stand_in_cdk(tmp_path, script: str):
    """A cdk CLI that runs the Python ``script``, and a CDK app directory: (cdk, app)."""
    cdk = tmp_path / "bin" / "cdk"
    cdk.parent.mkdir()
    cdk.write_text(f"#!{sys.executable}\n{script}")
    cdk.chmod(0o755)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text('{"app": "true"}')
    return cdk, app


def test_an_app_slow_to_synthesize_is_given_the_time_asked_and_the_run_says_how_to_give_more(embedded_aws, tmp_path):
    # Synthesizing had 600 s and no parameter: an app bundling its assets on a cold worker could
    # not be deployed by the flow at all.
    from blocks.credentials import credentials_for_endpoint
    from blocks.register import save_blocks

    # A stand-in cdk that synthesizes for ever, saying when it started.
    cdk, app = stand_in_cdk(tmp_path, f"import sys, time\nopen({str(tmp_path / 'started')!r}, 'w').close()\n"
                                      "print('Bundling asset WebordinaryFargateStack/Handler...', flush=True)\n"
                                      "time.sleep(600)\n")
    save_blocks(Targets(), credentials_for_endpoint(embedded_aws.endpoint_url, "us-west-2"),
                targets_block="infra-synth-targets", credentials_block="infra-synth-aws")
    started = time.monotonic()
    with pytest.raises(AppNotListed) as caught:
        deploy_infrastructure(cdk_app_dir=str(app), cdk_executable=str(cdk), synth_timeout_seconds=2,
                              targets_block="infra-synth-targets", aws_credentials_block="infra-synth-aws")
    assert (tmp_path / "started").exists() and time.monotonic() - started < 60
    message = str(caught.value)
    assert "did not synthesize within 2 s: cdk synth was stopped (nothing was deployed)" in message
    assert "allow it more time with synth_timeout_seconds" in message
    assert "Bundling asset WebordinaryFargateStack/Handler..." in message
    with pytest.raises(ParameterTypeError, match="synth_timeout_seconds"):
        verify_infrastructure(cdk_app_dir=str(app), cdk_executable=str(cdk), synth_timeout_seconds=0)


def blocks_interrupted_at_sts(embedded_aws, monkeypatch, prefix: str) -> None:
    """Blocks ``<prefix>-targets`` and ``<prefix>-aws`` for the embedded AWS, and every STS call
    from now on interrupted (Ctrl-C) as it is made."""
    from botocore.client import BaseClient

    from blocks.credentials import credentials_for_endpoint
    from blocks.register import save_blocks

    save_blocks(Targets(), credentials_for_endpoint(embedded_aws.endpoint_url, "us-west-2"),
                targets_block=f"{prefix}-targets", credentials_block=f"{prefix}-aws")
    real = BaseClient._make_api_call

    def interrupted(client, operation_name, api_params):
        if client.meta.service_model.service_name == "sts":
            raise KeyboardInterrupt
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", interrupted)


def test_a_run_interrupted_while_sts_is_asked_says_nothing_was_deployed(embedded_aws, tmp_path, monkeypatch, caplog):
    # Ctrl-C (or a cancel from the UI) while the run's first STS call waits (an AssumeRole on an
    # endpoint out of reach can wait minutes): the run ended with no word, and the key's newest
    # artifact was still an earlier run's "deployed", where a run stopped during the synth says
    # nothing was deployed.
    cdk, app = stand_in_cdk(tmp_path, f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    blocks_interrupted_at_sts(embedded_aws, monkeypatch, "infra-sts")
    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        deploy_infrastructure(cdk_app_dir=str(app), cdk_executable=str(cdk), from_stack="WebordinarySQSStack",
                              targets_block="infra-sts-targets", aws_credentials_block="infra-sts-aws")
    assert not (tmp_path / "ran").exists()
    said = " ".join(caplog.text.split())
    assert ("interrupted while reading the account of the AWS credentials block 'infra-sts-aws' (STS): nothing was "
            "run and no stack was "
            "deployed in this run (asked: " in said and "Run deploy_infrastructure again with "
            "from_stack='WebordinarySQSStack'" in said), said
    summary = latest(ARTIFACT_KEY, since)
    assert summary.startswith("# Infrastructure: stopped at reading the AWS account (STS, before cdk synth)"), summary
    assert "| 1 | `WebordinaryECRStack` | not deployed |" in summary
    assert "Resume with `from_stack='WebordinarySQSStack'` (nothing was deployed)." in summary, summary


def test_a_verify_interrupted_while_sts_is_asked_says_nothing_was_checked(embedded_aws, monkeypatch, caplog):
    # Ctrl-C (or a cancel from the UI) while verify_infrastructure's first STS call waits: the run
    # ended with no word, and the key's newest artifact was still an earlier run's "passed".
    verify_on(Passing())  # an earlier run's "passed"
    blocks_interrupted_at_sts(embedded_aws, monkeypatch, "verify-sts")
    since = time.time()
    with pytest.raises(KeyboardInterrupt):
        verify_infrastructure(targets_block="verify-sts-targets", aws_credentials_block="verify-sts-aws")
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist interrupted"), said
    assert "nothing was checked" in said
    assert "interrupted before the checklist read AWS: the checklist did not finish, nothing was checked" in caplog.text


def test_cdks_blank_lines_are_left_out_of_the_log_and_of_its_last_lines_quoted(tmp_path, caplog):
    # cdk prints a blank line for about every two it says something in: each was a row of the
    # run's log saying nothing, and they took places among the last lines a failure quotes.
    from rollway.toolchain.cdk import CdkCli, CdkEnvironment

    cdk = tmp_path / "bin" / "cdk"
    cdk.parent.mkdir()
    cdk.write_text(f"""#!{sys.executable}
import json, os, sys
if sys.argv[1] == "synth":
    with open(os.path.join(sys.argv[sys.argv.index("--output") + 1], "manifest.json"), "w") as f:
        json.dump({{"artifacts": {{"X": {{"type": "aws:cloudformation:stack"}}}}}}, f)
    sys.exit(0)
print("X: deploying... [1/1]")
for i in range(10):
    print()
    print(f"X | {{i}}/10 | CREATE_IN_PROGRESS | AWS::SQS::Queue | Queue{{i}}")
print()
print("❌  X failed to deploy")
print()
print("‣ Resource limit exceeded")
print()
sys.exit(1)
""")
    cdk.chmod(0o755)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    with CdkCli(str(cdk), app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(InfraDeployFailed) as caught:
            deploy_on(cli, None, requested=["X"])
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("stack 1/1 X |")]
    assert "stack 1/1 X | X | 9/10 | CREATE_IN_PROGRESS | AWS::SQS::Queue | Queue9" in logged
    assert [line for line in logged if not line.removeprefix("stack 1/1 X |").strip()] == []
    quoted = str(caught.value).split("cdk's last lines:\n", 1)[1].split("\nto resume", 1)[0].splitlines()
    assert len(quoted) == 13 and quoted[0] == "    X: deploying... [1/1]" and quoted[-1] == "    ‣ Resource limit exceeded"


def test_a_long_synth_says_it_is_still_running_in_the_runs_log(tmp_path, caplog):
    # An app bundling its assets synthesizes for minutes, its output at debug level: the run's log
    # stood still after "synthesizing the CDK app" all that time.
    import logging

    from rollway.toolchain.cdk import CdkCli, CdkEnvironment

    cdk = tmp_path / "bin" / "cdk"
    cdk.parent.mkdir()
    cdk.write_text(f"""#!{sys.executable}
import json, os, sys, time
print("Bundling asset X/Handler/Code/Stage...", flush=True)
time.sleep(1.3)
with open(os.path.join(sys.argv[sys.argv.index("--output") + 1], "manifest.json"), "w") as f:
    json.dump({{"artifacts": {{"X": {{"type": "aws:cloudformation:stack"}}}}}}, f)
""")
    cdk.chmod(0o755)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text("{}")
    with CdkCli(str(cdk), app, CdkEnvironment(region="us-west-2"), quiet_seconds=0.5) as cli:
        with pytest.raises(PlanRefused):  # the app has no stack of Webordinary's: enough to have listed it
            deploy_on(cli, None)
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    still = [m for m in shown if m.startswith("cdk synth: (still running after")]
    # 1.3 s of silence after the line, said every 0.5 s: twice, give or take one on a loaded machine
    # (and one quoting no line yet when cdk itself took over half a second to start); a line every
    # poll would be a dozen.
    quoting = [m for m in still if m.endswith("its last line: Bundling asset X/Handler/Code/Stage...)")]
    assert 1 <= len(quoting) <= 3, shown
    assert all(m.endswith("its last line: none)") for m in still[:len(still) - len(quoting)]), shown
    assert "cdk synth: Bundling asset X/Handler/Code/Stage..." not in shown  # cdk's own lines stay at debug


def _stand_in_cdk(tmp_path, script: str):
    """A Python ``script`` as the cdk CLI (bin/cdk) and an app directory (app/) for it: (cdk, app)."""
    cdk, app = tmp_path / "bin" / "cdk", tmp_path / "app"
    for made in (cdk.parent, app):
        made.mkdir()
    cdk.write_text(f"#!{sys.executable}\n{script}")
    cdk.chmod(0o755)
    (app / "cdk.json").write_text("{}")
    return cdk, app


def test_the_app_a_killed_run_synthesized_is_removed_saying_so_in_the_runs_log(tmp_path, monkeypatch, caplog):
    # A worker killed outright left its synthesized app in the temporary directory; the next run's
    # synth removes it and says so where people read (cdk's own synth lines stay at debug level).
    import logging
    import subprocess
    import tempfile

    from rollway.toolchain.cdk import ASSEMBLY_PREFIX, CdkCli, CdkEnvironment

    tmp = tmp_path / "tmp"
    tmp.mkdir()
    # Made by a process that then exits without removing it, as a killed run would.
    made = subprocess.run(
        [sys.executable, "-c", "import sys, tempfile; from rollway.toolchain.leftovers import owned_prefix; "
         f"print(tempfile.mkdtemp(prefix=owned_prefix({ASSEMBLY_PREFIX!r}), dir=sys.argv[1]))", str(tmp)],
        capture_output=True, text=True, check=True).stdout.strip()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    cdk, app = _stand_in_cdk(tmp_path, "print('the app failed')\nraise SystemExit(1)\n")
    with CdkCli(str(cdk), app, CdkEnvironment(region="us-west-2")) as cli:
        with pytest.raises(AppNotListed):
            deploy_on(cli, None)
    assert not os.path.exists(made)
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert (f"cdk synth: (removed {made}, the CDK app synthesized by a run that was killed before removing it)"
            in shown), shown


# --- the credentials cdk gets, from the AwsCredentials block ---------------------------------


def test_cdk_gets_the_blocks_keys_and_endpoint():
    from blocks.credentials import credentials_for_endpoint
    from flows.infra import cdk_environment

    env = cdk_environment(credentials_for_endpoint("http://127.0.0.1:4566", "us-west-2"), "us-west-2", "123456789012")
    variables = env.variables({})
    assert variables["AWS_ACCESS_KEY_ID"] == "testing" and variables["AWS_SECRET_ACCESS_KEY"] == "testing"
    assert variables["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    assert variables["CDK_DEFAULT_ACCOUNT"] == "123456789012" and env.secrets == ("testing",)


def test_cdk_gets_the_blocks_assumed_role_assumed_through_the_blocks_endpoint(aws):
    # prefect-aws's get_boto3_session sends AssumeRole to the public STS endpoint whatever the
    # block's endpoint_url: a worker reaching AWS through an endpoint of its own (a VPC endpoint,
    # the embedded AWS) failed there with "Could not connect to the endpoint URL".
    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters
    from pydantic import SecretStr

    from flows.infra import cdk_environment

    block = AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"),
                           region_name="us-west-2", assume_role_arn="arn:aws:iam::123456789012:role/deployer",
                           aws_client_parameters=AwsClientParameters(endpoint_url=aws.endpoint_url,
                                                                     config={"retries": {"max_attempts": 1}}))
    env = cdk_environment(block, "us-west-2", "123456789012")
    assert env.access_key_id not in (None, "testing") and env.session_token is not None
    assert env.endpoint_url == aws.endpoint_url


def test_cdk_gets_the_blocks_profile_or_the_workers_chain():
    from prefect_aws import AwsCredentials

    from flows.infra import cdk_environment

    profiled = cdk_environment(AwsCredentials(profile_name="deploy"), "us-west-2", "123456789012")
    assert profiled.profile == "deploy" and profiled.access_key_id is None and profiled.endpoint_url is None
    chain = cdk_environment(AwsCredentials(), "us-west-2", "123456789012")
    assert chain.variables({"AWS_ACCESS_KEY_ID": "worker"})["AWS_ACCESS_KEY_ID"] == "worker"


# --- the whole flow with the real cdk CLI on the embedded AWS --------------------------------


@pytest.mark.integration
def test_the_flow_bootstraps_deploys_in_order_and_checks_with_the_real_cdk(embedded_aws, tmp_path):
    from blocks.credentials import credentials_for_endpoint
    from blocks.register import save_blocks
    from rollway.targets import QueueSpec, TableSpec
    from tests.integration.test_cdk import CDK, app_copy

    embedded_aws.reset()
    targets = Targets(tables=(TableSpec(name="it-sessions", hash_key="sessionId", indexes=("userId-index",)),),
                      queues=(QueueSpec(name="it-input", dlq_name="it-input-dlq"),), alarms=("it-errors",),
                      stacks=("ItSQSStack", "ItSessionStack"))
    save_blocks(targets, credentials_for_endpoint(embedded_aws.endpoint_url, targets.region),
                targets_block="infra-it-targets", credentials_block="infra-it-aws")
    since = time.time()
    with pytest.raises(ChecklistFailed) as caught:
        deploy_infrastructure(cdk_app_dir=str(app_copy(tmp_path / "app")), stacks=["ItSessionStack", "ItSQSStack"],
                              cdk_executable=str(CDK), direct=True, bootstrap=True, stack_timeout_seconds=120,
                              targets_block="infra-it-targets", aws_credentials_block="infra-it-aws")
    # The app makes the sessions table and the queue with its DLQ, which pass; the rest of the
    # checklist (rollway's tables, the dashboard, the alarm, the alert topic) it does not make.
    failed = {i.name for i in caught.value.checklist.failed}
    assert failed == {targets.flags_table, targets.rollouts_table, targets.dashboard, "it-errors", targets.alert_topic}
    summary = latest(ARTIFACT_KEY, since)
    assert "| 1 | `ItSQSStack` | deployed |" in summary and "| 2 | `ItSessionStack` | deployed |" in summary
    assert "✅ pass | table | `it-sessions`" in summary and "✅ pass | queue | `it-input`" in summary
    assert "✅ pass | stack | `ItSQSStack` | CREATE_COMPLETE" in summary
    # The same verdict under verify_infrastructure's key, as its newest.
    verdict = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert verdict.startswith("# Pre-deployment checklist FAILED") and "✅ pass | table | `it-sessions`" in verdict



@pytest.mark.integration
def test_a_resume_with_the_real_cdk_deploys_the_stack_before_from_stack_that_no_run_deployed(embedded_aws, tmp_path,
                                                                                            it_assembly):
    # Resumed at ItSessionStack, the run counted ItSQSStack, which no run deployed, as deployed:
    # cdk then deployed the session stack over an export that did not exist.
    from blocks.credentials import credentials_for_endpoint
    from blocks.register import save_blocks
    from tests.integration.test_cdk import CDK, presynthesized_copy

    embedded_aws.reset()
    targets = Targets(stacks=("ItSQSStack", "ItSessionStack"))
    credentials = credentials_for_endpoint(embedded_aws.endpoint_url, targets.region)
    save_blocks(targets, credentials, targets_block="infra-resume-targets", credentials_block="infra-resume-aws")
    since = time.time()
    result = deploy_infrastructure(cdk_app_dir=str(presynthesized_copy(tmp_path / "app", it_assembly)),
                                   from_stack="ItSessionStack", cdk_executable=str(CDK), direct=True, bootstrap=True,
                                   verify=False, stack_timeout_seconds=120, targets_block="infra-resume-targets",
                                   aws_credentials_block="infra-resume-aws")
    assert [(r.stack, r.status) for r in result.stacks] == [("ItSQSStack", "deployed"), ("ItSessionStack", "deployed")]
    assert [(a.stack, a.status) for a in result.added] == [("ItSQSStack", None)]
    summary = latest(ARTIFACT_KEY, since)
    assert "- `ItSQSStack`: it does not exist" in summary
    assert "| 1 | `ItSQSStack` | deployed | " in summary and "stack/ItSQSStack/" in summary

    # Run again: cdk changes nothing, and CloudFormation's reads before and after say so, whatever cdk printed.
    since = time.time()
    deploy_infrastructure(cdk_app_dir=str(presynthesized_copy(tmp_path / "again", it_assembly)),
                          cdk_executable=str(CDK), direct=True, verify=False, stack_timeout_seconds=120,
                          targets_block="infra-resume-targets", aws_credentials_block="infra-resume-aws")
    summary = latest(ARTIFACT_KEY, since)
    # Each stack's own row: the text after the first row held the second's too.
    rows = {line.split("`")[1]: line for line in summary.splitlines() if line.startswith("| ") and "`" in line}
    for i, stack in enumerate(("ItSQSStack", "ItSessionStack"), 1):
        assert rows[stack].startswith(f"| {i} | `{stack}` | deployed | ") and (
            "no changes (the stack was up to date: CloudFormation shows it as it was before the deploy)"
            in rows[stack]), summary


@pytest.mark.integration
def test_a_stack_the_app_pins_to_another_region_is_bootstrapped_deployed_and_checked_there_with_the_real_cdk(
        embedded_aws, _get_client_for_region, tmp_path, it_assembly):
    from botocore.exceptions import ClientError

    from blocks.credentials import credentials_for_endpoint
    from blocks.register import save_blocks
    from rollway.targets import QueueSpec
    from tests.integration.test_cdk import CDK, presynthesized_copy

    embedded_aws.reset()
    targets = Targets(stacks=("ItPinnedStack",), queues=(QueueSpec(name="it-pinned", dlq_name="it-pinned-dlq"),),
                      tables=(), alarms=())
    save_blocks(targets, credentials_for_endpoint(embedded_aws.endpoint_url, targets.region),
                targets_block="infra-pinned-targets", credentials_block="infra-pinned-aws")
    since = time.time()
    with pytest.raises(ChecklistFailed) as caught:
        deploy_infrastructure(cdk_app_dir=str(presynthesized_copy(tmp_path / "app", it_assembly)),
                              stacks=["ItPinnedStack"], cdk_executable=str(CDK), direct=True, bootstrap=True,
                              stack_timeout_seconds=120, targets_block="infra-pinned-targets",
                              aws_credentials_block="infra-pinned-aws")
    # Bootstrapped and deployed in eu-west-1, where the app pins it; nothing in us-west-2.
    there = _get_client_for_region("eu-west-1")("cloudformation")
    here = _get_client_for_region(targets.region)("cloudformation")
    for stack in ("CDKToolkit", "ItPinnedStack"):
        assert there.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        with pytest.raises(ClientError, match="does not exist"):
            here.describe_stacks(StackName=stack)
    assert _get_client_for_region("eu-west-1")("sqs").get_queue_url(QueueName="it-pinned")
    # The checklist read the stack and its queue there, and says so; the rest (rollway's tables,
    # the dashboard, the alert topic) the app does not make.
    checklist = caught.value.checklist
    assert {i.name for i in checklist.failed} == {targets.flags_table, targets.rollouts_table, targets.dashboard,
                                                  targets.alert_topic}
    shown = {i.name: i.reason for i in checklist.items}
    assert shown["ItPinnedStack"] == "CREATE_COMPLETE in eu-west-1"
    assert shown["it-pinned"] == "redrives to it-pinned-dlq after 3 receives; the DLQ exists (read in eu-west-1)"
    summary = latest(ARTIFACT_KEY, since)
    assert "| 1 | `ItPinnedStack` | deployed | " in summary
    assert ":eu-west-1:123456789012:stack/ItPinnedStack/" in summary


def test_a_checked_stack_with_a_malformed_environment_is_refused_before_any_deploy(aws):
    # The checklist reads every Targets stack where the app deploys it, also those this run does
    # not deploy: one it could not place is refused before the first deploy, not after the last.
    deployer = FakeInfraDeployer(WEBORDINARY)
    deployer.app = AppStacks(dependencies=deployer.app.dependencies,
                             environments={"WebordinaryMonitoringStack": "aws://12345/us-west-2"})
    with pytest.raises(PlanRefused, match=r"WebordinaryMonitoringStack \('aws://12345/us-west-2'\)"):
        deploy_on(deployer, lambda app: checker_for(aws.get_client, aws.targets, app=app, home=HOME),
                  requested=STACKS[:5])
    assert deployer.calls == ["list"]


def test_verify_with_pinned_validation_fails_on_the_missing_header_rule_and_passes_once_it_is_kept(aws):
    """validate_deployment's spec.canary_header pins its checks by a listener rule the infrastructure
    keeps: the checklist never read it, and a checklist passed over an account where every pinned
    check would be refused, "not sent", the first time a validation ran after the deploy."""
    from tests.flows.test_validate_pinned import header_rule

    deployed_stacks(aws)
    inbox(aws)
    blocks = saved_blocks(aws, "verify-pinned")
    t = aws.targets
    since = time.time()
    with pytest.raises(ChecklistFailed) as caught:
        verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks,
                              canary_header="X-Rollway-Target: canary")
    said = str(caught.value)
    assert (f"- listener rule X-Rollway-Target: canary: listener {t.load_balancer}:{t.listener_port} (arn:" in said
            and "does not pin all the validation's HTTP checks carrying `X-Rollway-Target: canary`" in said
            and f"forwarding to {t.canary_target_group} alone" in said), said
    assert "❌ FAIL | listener rule | `X-Rollway-Target: canary`" in latest(CHECKLIST_ARTIFACT_KEY, since)

    header_rule(aws)
    checklist = verify_infrastructure(targets_block=blocks, aws_credentials_block=blocks,
                                      canary_header="X-Rollway-Target: canary")
    assert checklist.passed and checklist.items[-1].kind == "listener rule", checklist.summary()
    # Without it the rule is not read: no item.
    assert "listener rule" not in {i.kind for i in verify_infrastructure(targets_block=blocks,
                                                                           aws_credentials_block=blocks).items}


def test_verify_with_a_canary_header_no_check_could_carry_is_refused_before_anything_is_read(aws):
    since = time.time()
    with pytest.raises(InfraRefused, match="canary_header 'X-Rollway-Target' must be 'Name: value'"):
        verify_infrastructure(targets_block="no-such-block", canary_header="X-Rollway-Target")
    said = latest(CHECKLIST_ARTIFACT_KEY, since)
    assert said.startswith("# Pre-deployment checklist not checked") and "Name: value" in said, said
