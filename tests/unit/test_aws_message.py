"""aws_message: what AWS (or an endpoint standing in for it) said, on one line a person reads."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ProfileNotFound

from rollway.aws.errors import aws_message, credentials_remedy

PAGE = """<!doctype html>
<html lang=en>
<title>500 Internal Server Error</title>
<h1>Internal Server Error</h1>
<p>The server encountered an internal error and was unable to complete your request.</p>
"""


def refused(message: str, code: str = "500") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "GetDownloadUrlForLayer")


def test_an_error_page_in_place_of_a_message_is_one_line_of_its_text():
    # A proxy or an emulator answering with an HTML page: the warning that quoted it ran over
    # six lines of markup.
    said = aws_message(refused(PAGE))
    assert "\n" not in said and "<" not in said
    assert said.startswith("500: 500 Internal Server Error Internal Server Error The server encountered")


def test_a_long_multi_line_message_is_cut_to_one_readable_line():
    said = aws_message(refused("first line\n" + "x" * 3000))
    assert "\n" not in said and said.startswith("500: first line x") and said.endswith("…")
    assert len(said) < 1020


@pytest.mark.parametrize("message, said", [
    # An escape sequence (an endpoint's coloured error) coloured or cleared the reader's terminal,
    # and a carriage return let the rest of the message write over the code before it.
    ("\x1b[31mdenied\x1b[0m", "500: \\x1b[31mdenied\\x1b[0m"),
    ("denied\rOK: nothing wrong", "500: denied OK: nothing wrong"),
    ("bell\x07 and nul\x00", "500: bell\\x07 and nul\\x00"),
])
def test_an_aws_message_with_control_characters_is_shown_with_them_escaped(message, said):
    assert aws_message(refused(message)) == said


def test_a_long_single_line_message_is_cut_like_a_long_multi_line_one():
    # Only messages with a line break or HTML were cut: one line of 5,000 characters (a proxy's
    # minified page, a policy quoted whole) reached run logs, state messages and the CLI whole.
    said = aws_message(refused("y" * 5000))
    assert said.startswith("500: yyy") and said.endswith("…") and len(said) < 1020


def test_an_aws_message_is_quoted_as_it_is():
    message = "Value '<none>' at 'repositoryName' failed to satisfy constraint: length >= 2"
    assert aws_message(refused(message, "ValidationException")) == f"ValidationException: {message}"
    assert aws_message(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")) == (
        'EndpointConnectionError: Could not connect to the endpoint URL: "http://127.0.0.1:1"')


def test_an_answer_or_an_error_with_no_message_names_what_it_was_not_nothing():
    # AWS's answer with an empty message read "InternalServerError: An error occurred
    # (InternalServerError) when calling the PutItem operation: ", and an error with no words of its
    # own "ConnectionResetError: ": both ended where the message should have been.
    empty = ClientError({"Error": {"Code": "InternalServerError", "Message": ""}}, "PutItem")
    assert aws_message(empty) == "InternalServerError with no message"
    try:
        raise ConnectionResetError()
    except ConnectionResetError as err:
        said = aws_message(err)
    assert said.startswith("ConnectionResetError with no message, raised at tests/unit/test_aws_message.py:"), said


@pytest.mark.parametrize("err, remedy", [
    (NoCredentialsError(), "the AwsCredentials block gives no keys, profile or role, and the worker has none"),
    (ProfileNotFound(profile="deploy"), "the block's profile_name is not in the worker's AWS config"),
    (EndpointConnectionError(endpoint_url="https://sts.amazonaws.com"), "AWS could not be reached"),
    (ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "no"}}, "GetCallerIdentity"),
     "AWS does not know these keys"),
    (ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "AssumeRole"),
     "grant the credentials' identity sts:AssumeRole"),
    (ClientError({"Error": {"Code": "Throttling", "Message": "slow down"}}, "GetCallerIdentity"),
     "run again once the cause is fixed"),
])
def test_a_failed_call_with_the_credentials_says_which_setting_to_change(err, remedy):
    # botocore's words name the symptom ("Unable to locate credentials"), not what to change.
    assert credentials_remedy(err, "sts:AssumeRole").startswith(remedy)


@pytest.mark.parametrize("message", [
    # ELBv2, CloudWatch and STS answer a worker clock minutes behind or ahead with the bad-signature
    # code: the keys are fine, and renewing them changes nothing.
    "Signature expired: 20260105T110000Z is now earlier than 20260105T111500Z (20260105T112000Z - 5 min.)",
    "Signature not yet current: 20260105T120000Z is still later than 20260105T110500Z (20260105T110000Z + 5 min.)",
])
def test_a_bad_signature_from_a_skewed_clock_says_fix_the_worker_clock_not_the_keys(message):
    err = ClientError({"Error": {"Code": "SignatureDoesNotMatch", "Message": message}}, "DescribeTargetHealth")
    remedy = credentials_remedy(err, "elbv2:DescribeTargetHealth")
    assert remedy.startswith("the worker's clock is off"), remedy
    assert "NTP" in remedy and "aws_access_key_id" not in remedy and "does not know" not in remedy


def test_a_bad_signature_on_a_right_clock_says_the_secret_key_is_not_the_access_keys():
    err = ClientError({"Error": {"Code": "SignatureDoesNotMatch", "Message": (
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
        "Access Key and signing method. Consult the service documentation for details.")}}, "GetCallerIdentity")
    remedy = credentials_remedy(err, "sts:GetCallerIdentity")
    # AWS knows the access key id (it found a secret to check against): saying it does not sends a
    # person to re-create a key that exists.
    assert remedy.startswith("the secret key does not match the access key id"), remedy
    assert "aws_secret_access_key" in remedy and "does not know" not in remedy


def test_a_signature_expired_for_a_skewed_clock_on_a_json_api_says_fix_the_worker_clock():
    # The JSON APIs (CloudWatch Logs, DynamoDB) name the query APIs' skew InvalidSignatureException.
    err = ClientError({"Error": {"Code": "InvalidSignatureException", "Message": (
        "Signature expired: 20260105T110000Z is now earlier than 20260105T111500Z (20260105T112000Z - 5 min.)")}},
        "DescribeAlarms")
    remedy = credentials_remedy(err, "cloudwatch:DescribeAlarms")
    assert remedy.startswith("the worker's clock is off"), remedy
    assert "renew" not in remedy


def test_a_request_expired_says_its_date_was_off_by_the_clock_or_by_a_hold_not_that_the_keys_expired():
    """AWS documents RequestExpired (HTTP 400) as a request that reached it more than 15 minutes
    from the date stamp it was signed with (or with that stamp 15 minutes ahead): the worker's
    clock, or a request held on its way. Expired keys are ExpiredToken(Exception), HTTP 403. The
    advice was "the credentials have expired: renew the keys", which fixes nothing, and the code was
    counted among the answers that say AWS takes the credentials for no call."""
    from rollway.aws.errors import request_out_of_date, unusable_credentials

    err = ClientError({"Error": {"Code": "RequestExpired", "Message": "Request has expired."}}, "DescribeAlarms")
    assert not unusable_credentials(err) and request_out_of_date(err)
    remedy = credentials_remedy(err, "cloudwatch:DescribeAlarms")
    assert remedy.startswith("the request reached AWS more than 15 minutes from the time it was signed at"), remedy
    # The clock's part in the words of the clock's own advice (SignatureDoesNotMatch's), and the hold's.
    assert "the worker's clock is off from AWS's" in remedy and "sync it (NTP, e.g. chrony or systemd-timesyncd)" in \
        remedy, remedy
    assert "held" in remedy and "the keys are not the cause" in remedy, remedy
    assert "renew" not in remedy and "expired" not in remedy, remedy


@pytest.mark.parametrize("code", ["ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired"])
def test_expired_keys_are_credentials_aws_takes_for_no_call(code):
    from rollway.aws.errors import request_out_of_date, unusable_credentials

    err = ClientError({"Error": {"Code": code, "Message": "The security token included in the request is expired"}},
                      "GetCallerIdentity")
    assert unusable_credentials(err) and not request_out_of_date(err)
    assert credentials_remedy(err, "sts:GetCallerIdentity").startswith("the credentials have expired")


def test_an_incomplete_signature_says_what_altered_the_request_not_that_aws_does_not_know_the_keys():
    # IncompleteSignature is a request that reached AWS without all of its signature (an
    # Authorization or X-Amz-Date header dropped on the way): checking the keys fixes nothing.
    err = ClientError({"Error": {"Code": "IncompleteSignature", "Message": (
        "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter.")}},
        "DescribeRules")
    remedy = credentials_remedy(err, "elbv2:DescribeRules")
    assert "does not know these keys" not in remedy, remedy
    assert "proxy" in remedy and "endpoint_url" in remedy, remedy


@pytest.mark.parametrize("bound", ["connect", "read"])
def test_sts_that_does_not_answer_within_the_checks_bound_is_out_of_reach_not_unusable_credentials(bound):
    """The credentials check names botocore's timeouts by the bound they were given (ConnectUnanswered,
    ReadUnanswered, subclasses of botocore's): taken by their class names, they were not timeouts,
    so an STS out of reach by a timeout (a worker reaching AWS through VPC endpoints, none for STS,
    whose connections are dropped, not refused) stopped every run as credentials AWS takes for no
    call, "run again once the cause is fixed", where the run goes on when STS refuses the connection."""
    from rollway.aws.errors import ConnectUnanswered, ReadUnanswered, unusable_credentials

    kind = ConnectUnanswered if bound == "connect" else ReadUnanswered
    err = kind(endpoint_url="https://sts.us-west-2.amazonaws.com/", attempts=2, seconds=10, timeout=5)
    assert not unusable_credentials(err)
    assert credentials_remedy(err, "sts:GetCallerIdentity").startswith("AWS could not be reached"), \
        credentials_remedy(err, "sts:GetCallerIdentity")


def test_an_access_denied_naming_a_long_role_and_resource_is_quoted_whole():
    # AWS's own words are kept whole up to the bound: an AccessDenied names the role, the action,
    # the resource, and last whether an identity policy or a service control policy refused it,
    # which decides whom a person asks; cut at 300 characters, that last part was lost.
    message = ("User: arn:aws:sts::123456789012:assumed-role/webordinary-release-deployer/botocore-session-1764979200 "
               "is not authorized to perform: elasticloadbalancing:ModifyRule on resource: arn:aws:elasticloadbalancing:"
               "us-west-2:123456789012:listener-rule/app/webordinary-edit-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/"
               "9683b2d02a6cabee with an explicit deny in a service control policy")
    assert len(message) > 300
    assert aws_message(refused(message, "AccessDenied")) == f"AccessDenied: {message}"


def test_an_aws_message_for_a_read_of_several_calls_names_the_call_answered():
    # botocore's text named the operation ("when calling the ListTasks operation"): a message
    # quoting AWS's words in its place still says which call to grant or look at.
    assert aws_message(refused("slow down", "ThrottlingException"), call=True) == \
        "ThrottlingException on GetDownloadUrlForLayer: slow down"
    assert aws_message(refused("", "ThrottlingException"), call=True) == \
        "ThrottlingException on GetDownloadUrlForLayer with no message"
