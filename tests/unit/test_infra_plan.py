"""The infrastructure deployment plan: dependency order, refusals, resuming (pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.infra import AppStacks, PlanRefused, plan_deployment
from rollway.targets import Targets

# Webordinary's app as its plan describes it: the session stack needs the queues, Fargate needs
# the image repository, the secrets, the file system, the load balancer and the queues.
WEBORDINARY = {
    "WebordinaryECRStack": (),
    "WebordinarySecretsStack": (),
    "WebordinaryEFSStack": (),
    "WebordinaryALBStack": (),
    "WebordinarySQSStack": (),
    "WebordinarySessionStack": ("WebordinarySQSStack",),
    "WebordinaryFargateStack": ("WebordinaryECRStack", "WebordinarySecretsStack", "WebordinaryEFSStack",
                                "WebordinaryALBStack", "WebordinarySQSStack"),
    "WebordinaryMonitoringStack": ("WebordinaryFargateStack", "WebordinarySQSStack"),
}
ABC = {"A": (), "B": ("A",), "C": ("B",), "D": ()}


def test_the_default_stacks_deploy_in_the_order_written():
    plan = plan_deployment(Targets().stacks, AppStacks(dependencies=WEBORDINARY))
    assert plan.order == Targets().stacks
    assert plan.to_deploy == Targets().stacks and plan.skipped == () and not plan.reordered


@pytest.mark.parametrize("requested, expected", [
    (["A", "B", "C"], ("A", "B", "C")),
    (["C", "B", "A"], ("A", "B", "C")),          # dependencies win over the order asked for
    (["D", "C", "B", "A"], ("D", "A", "B", "C")),  # ... the order asked for breaks ties
    (["C", "D", "A", "B"], ("D", "A", "B", "C")),
    (["B", "A", "D"], ("A", "B", "D")),
])
def test_order_follows_dependencies_with_the_requested_order_as_tie_break(requested, expected):
    plan = plan_deployment(requested, ABC)
    assert plan.order == expected
    assert plan.reordered == (list(expected) != requested)


def test_a_dependency_named_as_already_deployed_satisfies_the_plan():
    assert plan_deployment(["C"], ABC, already_deployed=["B"]).order == ("C",)


@pytest.mark.parametrize("requested, kwargs, words", [
    ([], {}, ["no stacks"]),
    (["A", "A"], {}, ["more than once", "A"]),
    (["A"], {"already_deployed": ["A"]}, ["more than once"]),
    (["WebordinarySQSStak"], {}, ["defines no stack", "did you mean 'WebordinarySQSStack'"]),
    (["Nope"], {}, ["defines no stack 'Nope'", "its stacks:"]),
    (["WebordinarySQSStack"], {"already_deployed": ["WebordinaryECRStak"]}, ["did you mean 'WebordinaryECRStack'"]),
    (["WebordinarySessionStack"], {}, ["WebordinarySessionStack depends on WebordinarySQSStack",
                                       "neither in the plan nor named as already deployed"]),
    (["WebordinarySQSStack"], {"from_stack": "WebordinaryFargateStack"}, ["from_stack", "not one of the stacks"]),
])
def test_refused(requested, kwargs, words):
    with pytest.raises(PlanRefused) as caught:
        plan_deployment(requested, WEBORDINARY, **kwargs)
    for word in words:
        assert word in str(caught.value)


def test_a_cycle_is_refused_naming_it():
    # "X -> Y -> Z -> X" read as a deploy order as well as "X depends on Y": which way the arrows ran was a guess,
    # and nothing said where a cycle is broken.
    with pytest.raises(PlanRefused) as caught:
        plan_deployment(["X", "Y", "Z", "A"], {"X": ("Y",), "Y": ("Z",), "Z": ("X",), "A": ()})
    assert str(caught.value) == (
        "the stacks depend on each other in a cycle: X depends on Y, Y on Z, Z on X, so none of them can be deployed "
        "first; break the cycle in the CDK app (a stack's addDependency, or a value one stack takes from another, which "
        "cdk makes an export and an import) (nothing was deployed)")


def test_resume_counts_the_stacks_before_from_stack_as_done():
    plan = plan_deployment(Targets().stacks, WEBORDINARY, from_stack="WebordinarySQSStack")
    assert plan.skipped == Targets().stacks[:4]
    assert plan.to_deploy == Targets().stacks[4:]


def test_resume_counts_by_the_dependency_order_not_the_order_asked():
    plan = plan_deployment(["C", "B", "A"], ABC, from_stack="B")
    assert plan.skipped == ("A",) and plan.to_deploy == ("B", "C")


def test_a_stack_asked_for_by_its_construct_id_is_refused_naming_its_cloudformation_name():
    # The seed's hand-run `cdk deploy WebordinarySQSStack` names a construct id; an app setting
    # stackName gives the stack another name, and the refusal listed it with nothing linking the two.
    app = AppStacks(dependencies={"prod-webordinary-sqs": ()}, construct_ids={"WebordinarySQSStack": "prod-webordinary-sqs"})
    with pytest.raises(PlanRefused, match="'WebordinarySQSStack' \\(that is the construct id of the stack whose "
                                          "CloudFormation name is 'prod-webordinary-sqs'"):
        plan_deployment(["WebordinarySQSStack"], app)
