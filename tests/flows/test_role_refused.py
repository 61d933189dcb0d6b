"""Every flow that loads the AWS credentials block says in one line why its session could not be
made (a role STS will not let it assume, a profile not on the worker), with the remedy, before
any AWS call: only the infrastructure flows did, the others ended on boto's bare error."""

from __future__ import annotations

import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from prefect_aws.credentials import AssumeRoleParameters
from pydantic import SecretStr

from flows.env import AccountNotLoaded, CredentialsRefused
from flows.flags import set_flags
from flows.hooks import leave_alone
from flows.rollback import rollback
from flows.validate import validate_deployment
from rollway.flag_binding import FlagChange
from tests.flows.moto_env import saved_blocks

ROLE = "arn:aws:iam::123456789012:role/rollway-release"
# STS refuses a session name over 64 characters (ValidationError): moto answers as AWS does.
TOO_LONG = "r" * 65


@pytest.fixture
def refused_role(aws) -> str:
    """A credentials block whose role the embedded STS refuses to let it assume."""
    name = "role-refused"
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"),
                   region_name=aws.targets.region, assume_role_arn=ROLE,
                   assume_role_kwargs=AssumeRoleParameters(RoleSessionName=TOO_LONG),
                   aws_client_parameters=AwsClientParameters(endpoint_url=aws.endpoint_url,
                                                             config={"retries": {"max_attempts": 1}}),
                   ).save(name, overwrite=True)
    return name


def _expect_one_line(err: BaseException) -> str:
    message = str(err)
    assert message.startswith(f"could not assume the role {ROLE} of the AWS credentials block 'role-refused' (STS AssumeRole): "
                              "ValidationError: "), message
    assert message.endswith("; nothing was changed; run again once the cause is fixed"), message
    assert "\n" not in message
    return message


def test_rollback_says_the_role_could_not_be_assumed_and_moves_nothing(aws, refused_role):
    targets = saved_blocks(aws)
    elbv2 = aws.get_client("elbv2")
    before = elbv2.describe_rules(ListenerArn=aws.topology.listener_arn)["Rules"]
    with pytest.raises(CredentialsRefused) as caught:
        rollback(reason="test", targets_block=targets, aws_credentials_block=refused_role)
    _expect_one_line(caught.value)
    assert elbv2.describe_rules(ListenerArn=aws.topology.listener_arn)["Rules"] == before


def test_set_flags_and_validate_say_the_same(aws, refused_role):
    targets = saved_blocks(aws)
    with pytest.raises(CredentialsRefused) as flags:
        set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
                  targets_block=targets, aws_credentials_block=refused_role)
    with pytest.raises(CredentialsRefused) as validate:
        validate_deployment(targets_block=targets, aws_credentials_block=refused_role)
    assert _expect_one_line(flags.value) == _expect_one_line(validate.value)


def test_a_rollout_run_stopped_by_it_is_left_alone_by_its_hooks():
    """Nothing was moved: its rollback would only fail on the same role."""
    from prefect.states import Failed

    refused = CredentialsRefused("could not assume the role ...")
    assert isinstance(refused, AccountNotLoaded)
    why = leave_alone(Failed(data=refused), {})
    assert why is not None and why.startswith("it refused to start")


def test_a_profile_not_on_the_worker_is_named(aws, no_aws_credentials):
    AwsCredentials(profile_name="release", region_name=aws.targets.region).save("role-no-profile", overwrite=True)
    with pytest.raises(CredentialsRefused) as caught:
        set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
                  targets_block=saved_blocks(aws), aws_credentials_block="role-no-profile")
    assert str(caught.value) == (
        "could not load the AWS credentials block 'role-no-profile': ProfileNotFound: The config profile (release) could not be found; "
        "nothing was changed; the block's profile_name is not in the worker's AWS config (~/.aws/config, "
        "AWS_CONFIG_FILE)")


def test_no_credentials_anywhere_is_said_before_any_task_runs(aws, no_aws_credentials):
    """A block with no keys, profile or role on a worker with none: every flow's first task asked
    AWS three times, seconds apart, and the run ended on botocore's bare "Unable to locate
    credentials" (the flags flow's as "feature flag table ... unreachable")."""
    AwsCredentials(region_name=aws.targets.region, aws_client_parameters=AwsClientParameters(
        endpoint_url=aws.endpoint_url, config={"retries": {"max_attempts": 1}})).save("role-no-keys", overwrite=True)
    targets = saved_blocks(aws)
    expected = ("could not load the AWS credentials block 'role-no-keys': NoCredentialsError: Unable to locate credentials; nothing was "
                "changed; the AwsCredentials block gives no keys, profile or role, and the worker has none (AWS_* "
                "variables, ~/.aws, an instance or task role): give the block credentials, or the worker")
    with pytest.raises(CredentialsRefused) as flags:
        set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
                  targets_block=targets, aws_credentials_block="role-no-keys")
    assert str(flags.value) == expected
    with pytest.raises(CredentialsRefused) as rolled:
        rollback(reason="test", targets_block=targets, aws_credentials_block="role-no-keys")
    assert str(rolled.value) == expected


def test_a_block_for_another_region_is_named(aws):
    """With several credentials blocks saved (one per account or region), the refusal named none:
    the person had to guess which one the run had loaded."""
    AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"),
                   region_name="eu-west-1").save("role-other-region", overwrite=True)
    with pytest.raises(AccountNotLoaded) as caught:
        set_flags(changes=[FlagChange(feature="new_editor", enabled=True, create=True)],
                  targets_block=saved_blocks(aws), aws_credentials_block="role-other-region")
    assert str(caught.value) == (
        f"the AWS credentials (block 'role-other-region') are for region eu-west-1, the service is in "
        f"{aws.targets.region} (Targets.region): set one of them so that they agree")
