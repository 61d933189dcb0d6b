"""Targets given as ARNs of another account than the credentials' are refused before any call."""

from __future__ import annotations

from rollway.preflight_checks import account_refusal
from rollway.targets import Targets

OURS, THEIRS = "123456789012", "111122223333"
CLUSTER = f"arn:aws:ecs:us-west-2:{THEIRS}:cluster/edit"
GROUP = f"arn:aws:elasticloadbalancing:us-west-2:{THEIRS}:targetgroup/edit-stable/0123456789abcdef"


def test_an_arn_of_another_account_is_refused_naming_both_accounts_and_the_way_out():
    said = account_refusal(Targets(cluster=CLUSTER, stable_target_group=GROUP), OURS)
    assert said is not None
    assert f"cluster {CLUSTER} is in account {THEIRS}" in said
    assert f"stable_target_group {GROUP} is in account {THEIRS}" in said
    assert f"the AWS credentials are of account {OURS}" in said
    assert "Nothing was changed" in said


def test_names_arns_of_the_callers_account_and_an_unknown_account_are_let_through():
    assert account_refusal(Targets(), OURS) is None
    assert account_refusal(Targets(cluster=CLUSTER, stable_target_group=GROUP), THEIRS) is None
    assert account_refusal(Targets(cluster=CLUSTER), None) is None  # STS not reached: the calls say
