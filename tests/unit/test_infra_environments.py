"""Which environments ``cdk bootstrap`` prepares: every distinct account/region of the stacks to
deploy, the unknown parts from the deploying account and Targets.region (pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.infra import AppStacks, PlanRefused, StackEnvironment, bootstrap_environments, stack_environments

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
