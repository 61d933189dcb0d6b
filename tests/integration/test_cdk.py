"""The real cdk CLI against the embedded AWS: list a small app's stacks, deploy them in the
plan's order with ``--method=direct``, and read what they made with the checklist's adapter."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from pydantic import SecretStr

from blocks.credentials import client_factory, credentials_for_endpoint
from rollway.aws.checklist import AwsInfraChecker
from rollway.aws.cloudformation import CloudFormationStacks
from rollway.infra import AppNotListed, AppStacks, PlanRefused, StackDeployFailed, changed_stacks, plan_deployment
from rollway.targets import QueueSpec, TableSpec, Targets
from rollway.toolchain.cdk import CdkCli, CdkEnvironment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CDK = ROOT / ".rollway" / "node" / "node_modules" / ".bin" / "cdk"
APP = Path(__file__).with_name("cdk_app")
ACCOUNT, REGION = "123456789012", "us-west-2"
# moto takes any key; a distinctive one shows whether it ever leaks into cdk's output.
SECRET = "integration-secret-key-7f3a"


def app_copy(where: Path, command: str | None = None, **context: str) -> Path:
    """The test app in ``where``, its cdk.json running it with this venv's python (``context``:
    more of the app's context, e.g. ``pinned_region``)."""
    shutil.copytree(APP, where, ignore=shutil.ignore_patterns("cdk.out", "__pycache__", "cdk.json"))
    app = command or f"{sys.executable} app.py"
    (where / "cdk.json").write_text(json.dumps({"app": app, "context": {"prefix": "It", **context}}))
    return where


def synthesized(where: Path, **context: str) -> Path:
    """The test app's cloud assembly, synthesized by the real cdk into ``where`` (kept there;
    ``context`` as ``app_copy``'s)."""
    env = CdkEnvironment(region=REGION, account=ACCOUNT)
    with CdkCli(str(CDK), app_copy(where / "app", **context), env) as cli:
        cli.list_stacks()
        assert cli.assembly_dir is not None
        return Path(shutil.copytree(cli.assembly_dir, where / "assembly"))


# The app of an assembly already synthesized: it copies the assembly where cdk synth asks for it.
_COPY_ASSEMBLY = "import os, shutil, sys\nshutil.copytree(sys.argv[1], os.environ['CDK_OUTDIR'], dirs_exist_ok=True)\n"


def presynthesized_copy(where: Path, assembly: Path) -> Path:
    """An app directory, as ``app_copy``'s, whose app hands cdk ``assembly`` (``synthesized``):
    a flow runs cdk synth and reads what it made as of any app, without running the CDK app again
    (about 10 s of CPU a synth). For tests whose point is not the synth itself."""
    where.mkdir(parents=True)
    (where / "copy_assembly.py").write_text(_COPY_ASSEMBLY)
    command = f"{sys.executable} copy_assembly.py {assembly}"
    (where / "cdk.json").write_text(json.dumps({"app": command, "context": {"prefix": "It"}}))
    return where


@dataclass
class Deployed:
    cli: CdkCli
    app: AppStacks
    lines: list[str]
    get_client: object


@pytest.fixture(scope="module")
def cdk(embedded_aws, tmp_path_factory, it_assembly) -> Iterator[Deployed]:
    """The real cdk on the test app as the session synthesized it (tests/conftest.py's
    ``it_assembly``, with ItPinnedStack), bootstrapped in us-west-2."""
    if not CDK.exists():
        pytest.fail(f"{CDK} is missing: `make .rollway/.tools-installed` installs the pinned cdk CLI")
    embedded_aws.reset()
    env = CdkEnvironment(region=REGION, account=ACCOUNT, access_key_id="testing",
                         secret_access_key=SecretStr(SECRET), endpoint_url=embedded_aws.endpoint_url)
    lines: list[str] = []
    with CdkCli(str(CDK), presynthesized_copy(tmp_path_factory.mktemp("cdk") / "app", it_assembly), env,
                direct=True) as cli:
        cli.bootstrap(timeout_seconds=120, on_line=lines.append)
        app = cli.list_stacks(on_line=lines.append)
        yield Deployed(cli, app, lines, client_factory(credentials_for_endpoint(embedded_aws.endpoint_url, REGION)))


def test_the_app_lists_its_stacks_and_their_dependencies(cdk):
    assert cdk.app.dependencies == {"ItSQSStack": (), "ItSessionStack": ("ItSQSStack",), "it-named": (),
                                    "ItBrokenStack": (), "ItPinnedStack": ()}


def test_the_manifest_gives_the_environment_agnostic_stacks_unknown_account_and_region(cdk):
    # ItPinnedStack names its region and leaves the account to the deploying one's.
    agnostic = [name for name in cdk.app.names if name != "ItPinnedStack"]
    assert cdk.app.environments == {**dict.fromkeys(agnostic, "aws://unknown-account/unknown-region"),
                                    "ItPinnedStack": "aws://unknown-account/eu-west-1"}


def test_another_region_is_bootstrapped_when_named(cdk, embedded_aws):
    lines: list[str] = []
    cdk.cli.bootstrap(f"aws://{ACCOUNT}/eu-west-1", timeout_seconds=120, on_line=lines.append)
    other = client_factory(credentials_for_endpoint(embedded_aws.endpoint_url, "eu-west-1"))("cloudformation")
    assert other.describe_stacks(StackName="CDKToolkit")["Stacks"][0]["StackStatus"] in ("CREATE_COMPLETE",
                                                                                         "UPDATE_COMPLETE")
    assert any("eu-west-1" in line for line in lines), lines[-5:]


def test_another_account_cannot_be_bootstrapped_with_this_accounts_credentials(cdk):
    # Why deploy_infrastructure leaves another account's environment to that account's owner
    # (with --trust this account) instead of bootstrapping it.
    with pytest.raises(StackDeployFailed) as caught:
        cdk.cli.bootstrap("aws://210987654321/us-west-2", timeout_seconds=120)
    assert ("Need to perform AWS calls for account 210987654321, but the current credentials are for "
            f"{ACCOUNT}") in caught.value.reason


def test_a_stack_named_apart_from_its_id_deploys_by_its_cloudformation_name(cdk):
    # The plan speaks CloudFormation names (Targets.stacks); cdk selects stacks by construct id,
    # and answered "No stacks match the name(s) it-named" when handed the name.
    deployed = cdk.cli.deploy("it-named", timeout_seconds=120)
    assert deployed.arn and f":stack/it-named/" in deployed.arn, deployed
    assert deployed.outputs["QueueName"] == "it-named-queue"


def test_a_stack_asked_for_by_its_construct_id_is_refused_naming_its_cloudformation_name(cdk):
    # `cdk deploy ItNamedStack` works by hand (the seed's commands name construct ids); the plan,
    # which speaks CloudFormation names, refused it listing "it-named" with nothing linking the two.
    with pytest.raises(PlanRefused, match="'ItNamedStack' \\(that is the construct id of the stack whose "
                                          "CloudFormation name is 'it-named': name stacks by their CloudFormation "
                                          "name\\)"):
        plan_deployment(["ItNamedStack"], cdk.app)


def test_stacks_deploy_in_the_plans_order_and_make_what_the_checklist_expects(cdk):
    plan = plan_deployment(["ItSessionStack", "ItSQSStack"], cdk.app)
    assert plan.order == ("ItSQSStack", "ItSessionStack")
    seen: list[str] = []
    deployed = [cdk.cli.deploy(stack, timeout_seconds=120, on_line=seen.append) for stack in plan.to_deploy]

    assert [d.stack for d in deployed] == ["ItSQSStack", "ItSessionStack"]
    for d in deployed:
        assert d.arn and d.arn.startswith(f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{d.stack}/"), d
    assert deployed[1].outputs["TableName"] == "it-sessions"
    assert deployed[1].outputs["InputQueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:it-input"
    assert any("ItSessionStack" in line for line in seen)  # streamed as it came
    assert not [line for line in [*seen, *cdk.lines] if SECRET in line]
    # Deploying a stack again (a resumed run) changes nothing and succeeds; CloudFormation shows the
    # stack as it was, its newest event included: a deploy does not count it among those it changed.
    g = cdk.get_client
    stacks = CloudFormationStacks(g("cloudformation"))
    before = stacks.seen("ItSQSStack")
    assert before.status == "CREATE_COMPLETE" and before.last_event
    again = cdk.cli.deploy("ItSQSStack", timeout_seconds=120)
    assert again.arn == deployed[0].arn
    assert changed_stacks(["ItSQSStack"], {"ItSQSStack": before}, {"ItSQSStack": stacks.seen("ItSQSStack")}) == ()

    # What the stacks made, read by the checklist's adapter.
    targets = Targets(tables=(TableSpec(name="it-sessions", hash_key="sessionId", indexes=("userId-index",)),),
                      queues=(QueueSpec(name="it-input", dlq_name="it-input-dlq", max_receive_count=3),))
    items = {i.name: i for i in AwsInfraChecker(g("dynamodb"), g("sqs"), g("cloudwatch"), g("sns"), g("cloudformation"),
                                                 targets).check().items}
    assert items["it-sessions"].passed, items["it-sessions"].reason
    assert items["it-input"].passed, items["it-input"].reason


def test_a_stack_cloudformation_refuses_raises_with_cdks_reason(cdk):
    with pytest.raises(StackDeployFailed) as caught:
        cdk.cli.deploy("ItBrokenStack", timeout_seconds=120)
    assert caught.value.stack == "ItBrokenStack"
    assert "failed to deploy" in caught.value.reason
    assert "alphanumeric characters" in caught.value.reason  # CloudFormation's (moto's) own words
    assert any("❌" in line for line in caught.value.tail)


def test_an_unknown_stack_is_refused_without_running_cdk(cdk):
    with pytest.raises(PlanRefused, match="no stack 'ItNope'"):
        cdk.cli.deploy("ItNope", timeout_seconds=1)


def test_an_app_that_does_not_synthesize_is_not_listed(tmp_path):
    env = CdkEnvironment(region=REGION, account=ACCOUNT)
    command = f"{sys.executable} -c \"raise SystemExit('the app is broken: no such construct')\""
    with CdkCli(str(CDK), app_copy(tmp_path / "app", command), env) as cli:
        with pytest.raises(AppNotListed) as caught:
            cli.list_stacks()
    assert "did not synthesize" in str(caught.value)
    assert any("the app is broken" in line for line in caught.value.tail)


# An app whose cdk.json cdk reads runs (the mark is made); what cdk does with it then is not the point.
_MARK_APP = "open('ran', 'w').close()\n"


@pytest.mark.parametrize(("cdk_json", "user"), [
    (b'{"app": PYTHON_MARK}', None),
    (b'{"app": [PYTHON, "mark.py"]}', None),  # a list of words: cdk joins them
    (b'{"context": {}}', b'{"app": [PYTHON, "mark.py"]}'),
    (b'\xef\xbb\xbf{"app": PYTHON_MARK}', None),  # a byte order mark
    (b'{"context": {}}', b'{"app": PYTHON_MARK}'),  # the user's ~/.cdk.json gives it
    (b'// the app\n{"app": PYTHON_MARK}', None),  # not JSON: cdk refuses it too
    (b'{"app": PYTHON_MARK,}', None),
    (b'{"app": ""}', b'{"app": PYTHON_MARK}'),  # the app's own, blank, is the one cdk takes
    (b'{"app": PYTHON_MARK, "context": {"owner": "Jos\xe9"}}', None),  # not UTF-8: node replaces the byte
    (b'{"app": PYTHON_MARK, "n": ' + b"1" * 5000 + b"}", None),  # more digits than Python's int takes
    (b'{"app": PYTHON_MARK, "n": ' + b"[" * 3000 + b"]" * 3000 + b"}", None),  # deeper than Python's parser goes
])
def test_a_cdk_json_is_refused_before_cdk_runs_exactly_when_the_real_cdk_would_not_run_the_app(
        tmp_path, cdk_json, user):
    # A cdk.json refused that cdk reads stops every deploy of that app before it begins.
    from rollway.toolchain.cdk import app_settings_problem

    if not CDK.exists():
        pytest.skip("the cdk CLI is not installed (make test installs it)")
    app, home = tmp_path / "app", tmp_path / "home"
    app.mkdir()
    home.mkdir()
    (app / "mark.py").write_text(_MARK_APP)
    python = json.dumps(sys.executable).encode()
    for where, settings in ((app / "cdk.json", cdk_json), (home / ".cdk.json", user)):
        if settings is not None:
            where.write_bytes(settings.replace(b"PYTHON_MARK", json.dumps(f"{sys.executable} mark.py").encode())
                              .replace(b"PYTHON", python))
    inherited = {"PATH": os.environ["PATH"], "HOME": str(home)}
    variables = CdkEnvironment(region=REGION, account=ACCOUNT).variables(inherited)
    ran = subprocess.run([str(CDK), "synth", "--quiet", "--output", str(tmp_path / "out"), "--no-color"], cwd=app,
                         env=variables, capture_output=True, text=True, timeout=300)
    problem = app_settings_problem(app, home)
    assert (problem is None) is (app / "ran").exists(), (problem, ran.stdout[-2000:], ran.stderr[-2000:])
