"""The infra flows on the embedded AWS with an app that pins stacks to another region and to
another account: the checklist reads each stack where the app deploys it, and a resume reads
a skipped stack's status there. cdk is a stand-in script (the real cdk's manifest reading is
covered by tests/integration/test_cdk.py): it writes the manifest and "deploys" by printing."""

from __future__ import annotations

import json
import stat
import sys
from types import SimpleNamespace

import pytest

from blocks.credentials import credentials_for_endpoint
from blocks.register import save_blocks
from flows.infra import AwsNotRead, ChecklistFailed, InfraRefused, deploy_infrastructure, verify_infrastructure
from flows.env import CredentialsRefused
from rollway.infra import PlanRefused
from tests.flows.moto_env import inbox
from tests.unit.test_infra_plan import WEBORDINARY

ACCOUNT = "123456789012"  # the embedded account's
OTHER_ACCOUNT = "210987654321"
ELSEWHERE = "eu-west-1"
TARGETS_BLOCK, CREDENTIALS_BLOCK = "infra-regions-targets", "infra-regions-aws"
# The app deploys its ECR stack to eu-west-1 and its secrets to another account; the rest go
# wherever the run deploys (environment-agnostic).
PINNED = {"WebordinaryECRStack": f"aws://{ACCOUNT}/{ELSEWHERE}",
          "WebordinarySecretsStack": f"aws://{OTHER_ACCOUNT}/us-west-2"}


def fake_cdk(tmp_path, pinned=PINNED, templates=None):
    """A cdk stand-in: ``synth`` writes the pinned app's manifest (and ``templates``: stack -> its
    template); ``deploy`` succeeds."""
    templates = templates or {}
    manifest = {"version": "36.0.0", "artifacts": {
        name: {"type": "aws:cloudformation:stack", "dependencies": list(deps),
               "environment": pinned.get(name, "aws://unknown-account/unknown-region"),
               **({"properties": {"templateFile": f"{name}.template.json"}} if name in templates else {})}
        for name, deps in WEBORDINARY.items()}}
    files = {"manifest.json": manifest, **{f"{name}.template.json": t for name, t in templates.items()}}
    script = tmp_path / "bin" / "cdk"
    script.parent.mkdir()
    script.write_text(f"""#!{sys.executable}
import json, os, sys
if sys.argv[1] == "synth":
    out = sys.argv[sys.argv.index("--output") + 1]
    for name, body in json.loads({json.dumps(files)!r}).items():
        with open(os.path.join(out, name), "w") as f:
            json.dump(body, f)
elif sys.argv[1] == "deploy":
    print("✅  " + sys.argv[2])
else:
    sys.exit(2)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    app = tmp_path / "app"
    app.mkdir()
    (app / "cdk.json").write_text('{"app": "true"}')
    return str(script), str(app)


@pytest.fixture
def pinned(aws, _get_client_for_region):
    """The provisioned account with someone paged and every stack recorded: the ECR stack in
    eu-west-1 only, and a stack named like the other account's secrets stack in this account
    (which must not pass for it)."""
    inbox(aws)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in aws.targets.stacks:
        region = ELSEWHERE if stack == "WebordinaryECRStack" else aws.targets.region
        _get_client_for_region(region)("cloudformation").create_stack(StackName=stack, TemplateBody=body)
    save_blocks(aws.targets, credentials_for_endpoint(aws.endpoint_url, aws.targets.region),
                targets_block=TARGETS_BLOCK, credentials_block=CREDENTIALS_BLOCK)
    return aws


def _only_the_other_accounts_stack_fails(checklist) -> None:
    reasons = {i.name: i.reason for i in checklist.failed}
    assert list(reasons) == ["WebordinarySecretsStack"], reasons
    assert reasons["WebordinarySecretsStack"].startswith(
        f"could not read CloudFormation stack WebordinarySecretsStack (it is in aws://{OTHER_ACCOUNT}/us-west-2): "
        f"another account than the one these credentials read ({ACCOUNT})")
    ecr = next(i for i in checklist.items if i.name == "WebordinaryECRStack")
    assert ecr.passed and ecr.reason == f"CREATE_COMPLETE in {ELSEWHERE}"


def test_the_checklist_after_a_deploy_reads_each_stack_where_the_app_deploys_it(pinned, tmp_path):
    cdk, app = fake_cdk(tmp_path)
    with pytest.raises(ChecklistFailed) as caught:
        deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, stack_timeout_seconds=60,
                              targets_block=TARGETS_BLOCK, aws_credentials_block=CREDENTIALS_BLOCK)
    _only_the_other_accounts_stack_fails(caught.value.checklist)


def test_a_resume_reads_a_skipped_stack_in_its_region_with_a_block_naming_the_targets_region(pinned, tmp_path):
    # The saved block names us-west-2; reading the ECR stack's status in eu-west-1 with it was
    # refused ("the AWS credentials are for region us-west-2"), failing the resume.
    cdk, app = fake_cdk(tmp_path)
    result = deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, from_stack="WebordinarySQSStack",
                                   verify=False, stack_timeout_seconds=60, targets_block=TARGETS_BLOCK,
                                   aws_credentials_block=CREDENTIALS_BLOCK)
    by_stack = {r.stack: r for r in result.stacks}
    ecr = by_stack["WebordinaryECRStack"]
    assert ecr.status == "skipped" and "CREATE_COMPLETE" in ecr.detail
    assert [(a.stack, a.status) for a in result.added] == [("WebordinarySecretsStack", "unread")]


def test_verify_alone_given_the_app_reads_each_stack_where_the_app_deploys_it(pinned, tmp_path):
    cdk, app = fake_cdk(tmp_path)
    with pytest.raises(ChecklistFailed) as caught:
        verify_infrastructure(targets_block=TARGETS_BLOCK, aws_credentials_block=CREDENTIALS_BLOCK,
                              cdk_app_dir=app, cdk_executable=cdk)
    _only_the_other_accounts_stack_fails(caught.value.checklist)


def test_verify_alone_without_the_app_reads_every_stack_in_the_targets_region(pinned):
    with pytest.raises(ChecklistFailed) as caught:
        verify_infrastructure(targets_block=TARGETS_BLOCK, aws_credentials_block=CREDENTIALS_BLOCK)
    reasons = {i.name: i.reason for i in caught.value.checklist.failed}
    assert reasons == {"WebordinaryECRStack": "CloudFormation stack WebordinaryECRStack does not exist: deploy it "
                                              "(deploy_infrastructure)"}


@pytest.mark.parametrize("run, nothing", [
    (lambda app, cdk: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                            aws_credentials_block=CREDENTIALS_BLOCK), "nothing was deployed"),
    (lambda app, cdk: verify_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                            aws_credentials_block=CREDENTIALS_BLOCK), "nothing was checked"),
], ids=["deploy", "verify"])
def test_credentials_sts_refuses_end_the_run_in_one_line_before_the_app_is_read(pinned, tmp_path, monkeypatch,
                                                                               run, nothing):
    # Expired keys in the block: the run's first AWS call, GetCallerIdentity, ended it on boto's
    # bare "An error occurred (ExpiredToken) when calling the GetCallerIdentity operation".
    # (moto's STS answers any keys: the refusal is botocore's answer on moto's client.)
    import flows.env

    def expired(**_):
        return SimpleNamespace(status_code=403, headers={}), {
            "Error": {"Code": "ExpiredToken", "Message": "The security token included in the request is expired"},
            "ResponseMetadata": {}}

    made = []
    real = flows.env.client_factory

    def refusing(credentials, region=None, **given):
        get = real(credentials, region=region, **given)
        # The session's own identity check is answered (keys expire between two calls too); its
        # answer is not kept, as a session made with a role keeps none: the account is asked for.
        prove = get.caller_identity
        get.caller_identity = lambda: (prove(), setattr(get, "identity", None))[0]
        made.append(get("sts"))
        made[-1].meta.events.register("before-call.sts.GetCallerIdentity", expired)
        return get

    monkeypatch.setattr(flows.env, "client_factory", refusing)
    cdk, app = fake_cdk(tmp_path)
    try:
        with pytest.raises(AwsNotRead) as caught:
            run(app, cdk)
    finally:
        for sts in made:
            sts.meta.events.unregister("before-call.sts.GetCallerIdentity", expired)
    # What to do, not only what AWS said.
    # The block is named, as the session's own check names it: AWS's words name none.
    assert str(caught.value) == (f"could not read the account of the AWS credentials block {CREDENTIALS_BLOCK!r} (STS "
                                 "GetCallerIdentity): "
                                 f"ExpiredToken: The security token included in the request is expired; {nothing}; "
                                 "the credentials have expired: renew the keys of the AwsCredentials block (or of "
                                 "its profile) and run again")


@pytest.mark.parametrize("run, nothing", [
    (lambda app, cdk, block: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                                   aws_credentials_block=block), "nothing was deployed"),
    (lambda app, cdk, block: verify_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                                   aws_credentials_block=block), "nothing was checked"),
], ids=["deploy", "verify"])
def test_a_role_that_cannot_be_assumed_ends_the_run_in_one_line_before_cdk_starts(pinned, tmp_path, run, nothing):
    # A block with assume_role_arn assumes the role as its clients are made: with STS out of
    # reach the run ended on boto's bare "Could not connect to the endpoint URL", naming no call
    # and no remedy.
    import socket

    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters
    from pydantic import SecretStr

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    role = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name="us-west-2",
                   assume_role_arn=role, aws_client_parameters=AwsClientParameters(
                       endpoint_url=f"http://127.0.0.1:{port}", config={"retries": {"max_attempts": 1}}),
                   ).save("infra-unreachable-role", overwrite=True)
    from tests.flows.test_infra_flow import stand_in_cdk

    ran = tmp_path / "cdk-ran"
    cdk, app = stand_in_cdk(tmp_path, f"open({str(ran)!r}, 'w').close()\nraise SystemExit(1)\n")
    with pytest.raises(CredentialsRefused) as caught:
        run(str(app), str(cdk), "infra-unreachable-role")
    message = str(caught.value)
    assert message.startswith(f"could not assume the role {role} of the AWS credentials block 'infra-unreachable-role' "
                              "(STS AssumeRole): "
                              "EndpointConnectionError: Could not connect to the endpoint URL"), message
    assert message.endswith(f"; {nothing}; AWS could not be reached: check the worker's network and proxy "
                            "(HTTPS_PROXY), and the block's aws_client_parameters.endpoint_url if it sets one")
    assert "\n" not in message and not ran.exists()


@pytest.mark.parametrize("run", [
    lambda app, cdk: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                           aws_credentials_block=CREDENTIALS_BLOCK, verify=False, bootstrap=False),
    lambda app, cdk: verify_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                           aws_credentials_block=CREDENTIALS_BLOCK),
], ids=["deploy", "verify"])
def test_a_misspelt_region_in_the_cdk_app_is_refused_naming_the_stack_and_the_app(pinned, tmp_path, run):
    # Found only as its session was made, it said to "set the region of the targets (or the AWS
    # credentials' region_name)", both right; a deploy without the checklist deployed its stacks.
    import botocore

    cdk, app = fake_cdk(tmp_path, pinned={"WebordinaryECRStack": f"aws://{ACCOUNT}/eu-wset-1"})
    with pytest.raises(PlanRefused) as caught:
        run(app, cdk)
    assert str(caught.value) == (
        f"the CDK app pins stacks to a region AWS does not have: WebordinaryECRStack (aws://{ACCOUNT}/eu-wset-1: the "
        f"aws partition has no such region as botocore {botocore.__version__} lists them (did you mean eu-west-1?); "
        "for a region AWS opened since, upgrade boto3); fix the region in the env of these stacks in the CDK app (the "
        "targets' region, us-west-2, is not at fault; nothing was deployed)")


def test_verify_refuses_a_bad_app_or_cdk_before_reading_any_block(tmp_path):
    # No such blocks: had it got as far as loading them (or calling AWS), it would say so.
    blocks = {"targets_block": "no-such-targets", "aws_credentials_block": "no-such-aws"}
    with pytest.raises(InfraRefused, match="not a directory"):
        verify_infrastructure(cdk_app_dir=str(tmp_path / "nope"), **blocks)
    (tmp_path / "cdk.json").write_text('{"app": "true"}')
    with pytest.raises(InfraRefused, match="cdk_executable 'true': .* is not the AWS CDK CLI"):
        verify_infrastructure(cdk_app_dir=str(tmp_path), cdk_executable="true", **blocks)


# --- the tables and queues of stacks in another region -----------------------------------------

def _template(**names) -> dict:
    """A template as cdk synthesizes it, naming tables and queues (``table=[...]``, ``queue=[...]``)."""
    types = {"table": ("AWS::DynamoDB::Table", "TableName"), "queue": ("AWS::SQS::Queue", "QueueName")}
    return {"Resources": {f"{kind}{i}": {"Type": types[kind][0], "Properties": {types[kind][1]: name}}
                          for kind, listed in names.items() for i, name in enumerate(listed)}}


@pytest.fixture
def queued_elsewhere(aws, _get_client_for_region):
    """The provisioned account (so tables and queues of the same names in us-west-2), every stack
    recorded, the session and SQS stacks in eu-west-1; nothing of theirs made there yet."""
    inbox(aws)
    body = json.dumps({"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}})
    for stack in aws.targets.stacks:
        region = ELSEWHERE if stack in ("WebordinarySessionStack", "WebordinarySQSStack") else aws.targets.region
        _get_client_for_region(region)("cloudformation").create_stack(StackName=stack, TemplateBody=body)
    save_blocks(aws.targets, credentials_for_endpoint(aws.endpoint_url, aws.targets.region),
                targets_block=TARGETS_BLOCK, credentials_block=CREDENTIALS_BLOCK)
    return aws


def test_verify_reads_tables_and_queues_where_the_app_deploys_their_stacks(
        queued_elsewhere, _get_client_for_region, tmp_path):
    # The app deploys its session and SQS stacks to eu-west-1; the checklist read their table and
    # queue in us-west-2 all the same, where same-named ones passed for them.
    from tests.adapters.test_checklist_aws import monitoring_in

    t = queued_elsewhere.targets
    sessions, queue = t.tables[0].name, t.queues[0]
    there = f"aws://{ACCOUNT}/{ELSEWHERE}"
    cdk, app = fake_cdk(tmp_path, pinned={"WebordinarySessionStack": there, "WebordinarySQSStack": there},
                        templates={"WebordinarySessionStack": _template(table=[sessions, t.flags_table]),
                                   "WebordinarySQSStack": _template(queue=[queue.name, queue.dlq_name])})
    verify = lambda: verify_infrastructure(targets_block=TARGETS_BLOCK,  # noqa: E731
                                           aws_credentials_block=CREDENTIALS_BLOCK, cdk_app_dir=app,
                                           cdk_executable=cdk)
    # Rollway keeps its flags in Targets.region: a flags table the app deploys elsewhere fails.
    misplaced = (f"rollway uses it in {t.region} (Targets.region), but the CDK app's stack WebordinarySessionStack "
                 f"deploys it to {there}, where rollway would not find it: deploy that stack to this account and "
                 "region")
    with pytest.raises(ChecklistFailed) as caught:
        verify()
    assert {i.name: i.reason for i in caught.value.checklist.failed} == {
        sessions: f"DynamoDB table {sessions} in {ELSEWHERE} does not exist: deploy WebordinarySessionStack, whose "
                  "template defines it (deploy_infrastructure)",
        queue.name: f"SQS queue {queue.name} in {ELSEWHERE} does not exist: deploy WebordinarySQSStack, whose "
                    f"template defines it (deploy_infrastructure); its dead-letter queue {queue.dlq_name} in "
                    f"{ELSEWHERE} does not exist either",
        t.flags_table: misplaced}

    monitoring_in(_get_client_for_region(ELSEWHERE), t)  # the sessions table and the queue, made there
    with pytest.raises(ChecklistFailed) as caught:
        verify()
    assert {i.name: i.reason for i in caught.value.checklist.failed} == {t.flags_table: misplaced}
    shown = {i.name: i.reason for i in caught.value.checklist.items}
    assert shown[sessions] == f"ACTIVE, hash key sessionId, indexes userId-index ACTIVE (read in {ELSEWHERE})"
    assert shown[queue.name] == (f"redrives to {queue.dlq_name} after {queue.max_receive_count} receives; the DLQ "
                                 f"exists (read in {ELSEWHERE})")
    assert shown[t.tables[1].name] == "ACTIVE, hash key projectKey"  # read in the targets' region, said nowhere


def test_verify_without_the_app_and_aws_out_of_reach_fails_in_one_line_not_an_item_each(pinned):
    # With no app to read, the checklist was the first AWS call: every one of its twenty items
    # failed alike ("EndpointConnectionError: Could not connect ..."), each after botocore's
    # retries, and nothing said what to change.
    import socket

    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters
    from pydantic import SecretStr

    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name="us-west-2",
                   aws_client_parameters=AwsClientParameters(endpoint_url=f"http://127.0.0.1:{port}",
                                                             config={"retries": {"max_attempts": 1}}),
                   ).save("infra-unreachable", overwrite=True)
    # Found as the session is made (flows.env.session_clients), before the account is read.
    with pytest.raises(CredentialsRefused) as caught:
        verify_infrastructure(targets_block=TARGETS_BLOCK, aws_credentials_block="infra-unreachable")
    message = str(caught.value)
    assert message.startswith("could not use the AWS credentials block 'infra-unreachable' (STS GetCallerIdentity): "
                              "EndpointConnectionError: Could not connect to the endpoint URL"), message
    assert message.endswith("; nothing was checked; AWS could not be reached: check the worker's network and proxy "
                            "(HTTPS_PROXY), and the block's aws_client_parameters.endpoint_url if it sets one")


@pytest.fixture
def sts_off_elsewhere(monkeypatch):
    """STS deactivated in eu-west-1 for the account, as IAM's account settings allow: AWS answers
    AssumeRole there RegionDisabledException (moto's STS answers in every region). Returns the
    regions AssumeRole was asked in."""
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call
    asked: list[str] = []

    def answered(client, operation_name, api_params):
        if client.meta.service_model.service_name == "sts" and operation_name == "AssumeRole":
            asked.append(client.meta.region_name)
            if client.meta.region_name == ELSEWHERE:
                raise ClientError({"Error": {"Code": "RegionDisabledException", "Message": (
                    f"STS is not activated in this region for account:{ACCOUNT}. Your account administrator can "
                    "activate STS in this region using the IAM Console.")}}, operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return asked


@pytest.mark.parametrize("run, nothing", [
    (lambda app, cdk, block: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, stack_timeout_seconds=60,
                                                   targets_block=TARGETS_BLOCK, aws_credentials_block=block),
     "nothing was deployed"),
    (lambda app, cdk, block: deploy_infrastructure(cdk_app_dir=app, cdk_executable=cdk, verify=False,
                                                   from_stack="WebordinarySQSStack", stack_timeout_seconds=60,
                                                   targets_block=TARGETS_BLOCK, aws_credentials_block=block),
     "nothing was deployed"),
    (lambda app, cdk, block: verify_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                                                   aws_credentials_block=block), "nothing was checked"),
], ids=["deploy", "resume", "verify"])
def test_a_role_refused_in_a_region_the_app_deploys_to_ends_the_run_in_one_line_before_any_deploy(
        pinned, tmp_path, sts_off_elsewhere, run, nothing):
    # The clients of another region were made with client_factory directly: the refusal came as
    # boto's bare ClientError, failing the ECR stack's checklist item as "DescribeStacks ... in
    # eu-west-1: RegionDisabledException" after every stack was deployed, or a resume as
    # "could not read the CloudFormation status ... (DescribeStacks)", neither with a remedy.
    from prefect_aws import AwsCredentials
    from prefect_aws.client_parameters import AwsClientParameters
    from pydantic import SecretStr

    role = f"arn:aws:iam::{ACCOUNT}:role/deployer"
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name="us-west-2",
                   assume_role_arn=role, aws_client_parameters=AwsClientParameters(
                       endpoint_url=pinned.endpoint_url, config={"retries": {"max_attempts": 1}}),
                   ).save("infra-role-off-elsewhere", overwrite=True)
    cdk, app = fake_cdk(tmp_path)
    deployed = tmp_path / "deployed"
    cdk_script = tmp_path / "bin" / "cdk"
    cdk_script.write_text(cdk_script.read_text().replace('print("✅  " + sys.argv[2])',
                                                         f'open({str(deployed)!r}, "a").write(sys.argv[2])\n'
                                                         '    print("✅  " + sys.argv[2])'))
    with pytest.raises(CredentialsRefused) as caught:
        run(app, cdk, "infra-role-off-elsewhere")
    assert str(caught.value) == (
        f"could not assume the role {role} of the AWS credentials block 'infra-role-off-elsewhere' (STS AssumeRole in "
        f"{ELSEWHERE}, to read what the CDK app deploys there): RegionDisabledException: STS is not activated in this "
        f"region for account:{ACCOUNT}. "
        "Your account administrator can activate STS in this region using the IAM Console.; "
        f"{nothing}; STS is deactivated in that region for the account: activate it in the IAM console (Account "
        "settings, Security Token Service endpoints), then run again")
    assert not deployed.exists()
    assert sts_off_elsewhere[0] == "us-west-2" and ELSEWHERE in sts_off_elsewhere


def test_a_region_the_account_has_not_enabled_is_named_as_such_not_as_unknown_keys(pinned, tmp_path, monkeypatch):
    # AWS answers any call in an opt-in region the account has not enabled InvalidClientTokenId
    # ("the security token included in the request is invalid"): the remedy said to check the
    # keys, which had just worked in the targets' region.
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    real = BaseClient._make_api_call

    def answered(client, operation_name, api_params):
        if client.meta.region_name == ELSEWHERE:
            raise ClientError({"Error": {"Code": "InvalidClientTokenId",
                                         "Message": "The security token included in the request is invalid."}},
                              operation_name)
        return real(client, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    cdk, app = fake_cdk(tmp_path)
    with pytest.raises(CredentialsRefused) as caught:
        verify_infrastructure(cdk_app_dir=app, cdk_executable=cdk, targets_block=TARGETS_BLOCK,
                              aws_credentials_block=CREDENTIALS_BLOCK)
    assert str(caught.value) == (
        f"could not use the AWS credentials block {CREDENTIALS_BLOCK!r} (STS GetCallerIdentity in {ELSEWHERE}, to read what the CDK app deploys "
        "there): InvalidClientTokenId: The security token included in the request is invalid.; nothing was checked; "
        "these keys work in the targets' region: the account has likely not enabled this one (an opt-in region: "
        "enable it in the AWS console's Account settings), then run again")
