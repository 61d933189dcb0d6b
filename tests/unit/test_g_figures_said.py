"""Settings quoted as they were given in refusals and errors: ``:g`` kept six digits, so 12.3456789 s
read "12.3457 s" and 1234567 s "1.23457e+06 s", figures nobody gave."""
from __future__ import annotations

import pickle

import pytest

ODD, BIG = 12.3456789, 1234567.0


def test_a_botocore_timeout_says_its_bound_as_given():
    from rollway.aws.errors import ConnectUnanswered, ReadUnanswered

    read = ReadUnanswered(endpoint_url="https://sts.us-west-2.amazonaws.com/", attempts=1, seconds=BIG, timeout=BIG)
    assert "no answer within 1234567 s (1 attempt(s) of 1234567 s each)" in str(read), str(read)
    connect = ConnectUnanswered(endpoint_url="https://sts.us-west-2.amazonaws.com/", attempts=3, seconds=3 * 0.1,
                                timeout=0.1)
    assert "no connection within 0.3 s (3 attempt(s) of 0.1 s each)" in str(connect), str(connect)
    assert str(pickle.loads(pickle.dumps(connect))) == str(connect)  # a run's persisted failure, read back


def test_a_renewal_policy_refused_quotes_its_settings_as_given():
    from rollway.lease import RenewalPolicy

    with pytest.raises(ValueError, match=r"max_retry_seconds \(12\.3456789\) is shorter than first_retry_seconds "
                                         r"\(20\)"):
        RenewalPolicy(max_retry_seconds=ODD, first_retry_seconds=20.0)
    with pytest.raises(ValueError, match=r"in a 60\.1234567 s lease"):
        RenewalPolicy(lease_seconds=60.1234567, max_retry_seconds=20.0)


def test_a_validation_spec_refused_and_a_check_stopped_quote_the_settings_as_given():
    from rollway.validation import HTTP_CHECK_LIMIT, ValidationSpec, past_check_limit

    with pytest.raises(ValueError, match=r"less than timeout_seconds 12\.3456789:"):
        ValidationSpec(timeout_seconds=ODD, **{HTTP_CHECK_LIMIT: 10})
    why = past_check_limit(ValidationSpec(), elapsed=1000, wait=ODD, failed_attempt=1)
    assert "after its 12.3456789 s wait" in why, why


def test_a_health_check_refusal_quotes_the_wait_as_given():
    from rollway.model import TargetGroup
    from rollway.preflight_checks import health_check_refusal

    group = TargetGroup(arn="arn:aws:elasticloadbalancing:us-west-2:1:targetgroup/canary/abc", interval_seconds=300,
                        timeout_seconds=120)
    said = health_check_refusal(group, "canary", ODD)
    assert said is not None and said.startswith("healthy_timeout_seconds is 12.3456789 s,"), said


def test_command_options_refused_are_quoted_as_given():
    from rollway.cli.ops import check_wait
    from rollway.cli.up import check_rps, check_up_options

    with pytest.raises(Exception, match=r"--wait-seconds 1234567: must be 0"):
        check_wait(BIG)
    with pytest.raises(ValueError, match=r"--rps 1234567 is more than"):
        check_rps(BIG, allow_zero=True)
    with pytest.raises(ValueError, match=r"--poll-seconds 1234567 is too long"):
        check_up_options(port=None, speed=1.0, rps=1.0, poll_seconds=BIG)


@pytest.mark.parametrize("floor, said, give", [(0.1234567, "0.1234567", "12.34567"), (0.07, "0.07", "7"),
                                               (1e-05, "1e-05", "0.001"), (1.0, "1", "100")])
def test_a_success_rate_floor_given_as_a_fraction_is_told_its_percent_as_given(floor, said, give):
    from rollway.validation import ValidationSpec

    with pytest.raises(ValueError) as refused:
        ValidationSpec(success_rate_floor=floor)
    assert f"success_rate_floor {said} is a number of percent" in str(refused.value), str(refused.value)
    assert f"as given it is a floor of {said} %" in str(refused.value), str(refused.value)
    assert f"; give {give} (0 for no floor)" in str(refused.value), str(refused.value)
