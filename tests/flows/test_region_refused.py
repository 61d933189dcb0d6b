"""A region that does not exist is refused before any AWS call, naming the setting, from
botocore's own region lists (offline): ``us-est-1`` was found only by the first call, a
connection error to an endpoint no DNS knows once the run had begun (on the embedded AWS,
which answers any region, not at all)."""

from __future__ import annotations

import pytest
from prefect_aws import AwsCredentials
from prefect_aws.client_parameters import AwsClientParameters
from pydantic import SecretStr, ValidationError

from blocks.credentials import client_factory, credentials_for_endpoint
from flows.env import AccountNotLoaded
from flows.rollback import rollback
from rollway.targets import Targets
from tests.flows.test_targets_block_typos import _save_document

SERVICES = ("elbv2", "ecs", "dynamodb", "sns", "sts")


def test_a_misspelt_region_is_refused_naming_the_field_and_the_regions_it_may_mean():
    with pytest.raises(ValidationError) as refused:
        Targets(region="us-est-1")
    text = str(refused.value)
    assert "region\n" in text
    assert ("'us-est-1' is not a region of AWS: the aws partition has no such region as botocore "
            in text), text
    assert "(did you mean us-east-1 or us-west-1?); for a region AWS opened since, upgrade boto3" in text
    with pytest.raises(ValidationError, match=r"the aws-us-gov partition .*did you mean us-gov-west-1\?"):
        Targets(region="us-gov-wset-1")


def test_a_saved_targets_block_with_a_region_aws_lacks_stops_the_run_before_any_aws_call(aws, every_call):
    credentials_for_endpoint(aws.endpoint_url, aws.targets.region).save("region-typo", overwrite=True)
    _save_document("region-typo", {**aws.targets.model_dump(mode="json"), "region": "us-est-1"})
    calls = [every_call(s) for s in SERVICES]
    with pytest.raises(AccountNotLoaded) as refused:
        rollback(reason="test", targets_block="region-typo", aws_credentials_block="region-typo")
    text = str(refused.value)
    assert "\n" not in text and "failed validation: region: " in text, text
    assert "'us-est-1' is not a region of AWS" in text and "did you mean us-east-1 or us-west-1?" in text
    assert calls == [[] for _ in SERVICES]


def _keys(region: str, endpoint_url: str | None = None) -> AwsCredentials:
    return AwsCredentials(aws_access_key_id="testing", aws_secret_access_key=SecretStr("testing"), region_name=region,
                          aws_client_parameters=AwsClientParameters(endpoint_url=endpoint_url,
                                                                    config={"retries": {"max_attempts": 1}}))


def test_a_region_of_no_aws_partitions_form_needs_an_endpoint_that_serves_it(embedded_aws, every_call):
    # Well-formed for rollway, of no AWS partition's form: AWS has no endpoint for it, an
    # AWS-compatible one (an emulator, a private cloud) may.
    assert Targets(region="xx-local-1").region == "xx-local-1"
    asked = every_call("sts")
    with pytest.raises(ValueError) as refused:
        client_factory(_keys("xx-local-1"), region="xx-local-1")
    assert str(refused.value) == (
        "region 'xx-local-1' is not a region of AWS: its name is of no AWS partition's "
        "form (us-west-2, us-gov-west-1, cn-north-1, ...), and only an AWS-compatible endpoint (the AWS "
        "credentials' aws_client_parameters.endpoint_url) could serve it; set the region of the targets (or the "
        "AWS credentials' region_name) to one AWS has")
    assert asked == []
    get_client = client_factory(_keys("xx-local-1", embedded_aws.endpoint_url), region="xx-local-1")
    assert get_client("sts").get_caller_identity()["Account"]


def test_aws_names_are_checked_with_an_endpoint_too(embedded_aws):
    """An emulator takes AWS's own names, and a real account's VPC endpoint signs for the region
    given: a misspelt one is refused with an endpoint as without."""
    with pytest.raises(ValueError, match="'eu-wst-1' is not a region of AWS: .*did you mean eu-west-1"):
        client_factory(_keys("eu-wst-1", embedded_aws.endpoint_url))
    assert client_factory(_keys("eu-west-1", embedded_aws.endpoint_url))("sts").get_caller_identity()["Account"]
