"""Resuming: the stacks before from_stack are skipped only if CloudFormation shows them deployed
(``rollway.infra.confirm_skipped``, pure, table-driven)."""

from __future__ import annotations

import pytest

from rollway.infra import (PlanRefused, check_already_deployed, check_not_changing, check_not_stuck, confirm_skipped,
                           plan_deployment)
from tests.unit.test_infra_plan import ABC, WEBORDINARY

# A resume at C: A and B are ordered before it (B depends on A), D after nothing.
RESUMED = plan_deployment(["A", "B", "C"], ABC, from_stack="C")


@pytest.mark.parametrize("statuses, skipped, added, to_deploy", [
    # Deployed: skipped as before.
    ({"A": "CREATE_COMPLETE", "B": "UPDATE_COMPLETE"}, ("A", "B"), (), ("C",)),
    ({"A": "IMPORT_COMPLETE", "B": "CREATE_COMPLETE"}, ("A", "B"), (), ("C",)),
    # Not deployed: deployed after all, in dependency order, ahead of from_stack.
    ({"A": None, "B": None}, (), ("A", "B"), ("A", "B", "C")),
    ({"A": "CREATE_COMPLETE", "B": None}, ("A",), ("B",), ("B", "C")),
    ({"A": None, "B": "CREATE_COMPLETE"}, ("B",), ("A",), ("A", "C")),
    ({"A": "ROLLBACK_COMPLETE", "B": "CREATE_COMPLETE"}, ("B",), ("A",), ("A", "C")),
    ({"A": "DELETE_COMPLETE", "B": "CREATE_COMPLETE"}, ("B",), ("A",), ("A", "C")),
    ({"A": "REVIEW_IN_PROGRESS", "B": "CREATE_COMPLETE"}, ("B",), ("A",), ("A", "C")),
    ({"A": "CREATE_COMPLETE", "B": "UPDATE_ROLLBACK_COMPLETE"}, ("A",), ("B",), ("B", "C")),
    ({"A": "CREATE_FAILED", "B": "UPDATE_ROLLBACK_FAILED"}, (), ("A", "B"), ("A", "B", "C")),
    # Not read (another account): deployed again to be sure.
    ({"B": "CREATE_COMPLETE"}, ("B",), ("A",), ("A", "C")),
])
def test_only_stacks_cloudformation_shows_deployed_stay_skipped(statuses, skipped, added, to_deploy):
    plan = confirm_skipped(RESUMED, statuses)
    assert plan.skipped == skipped
    assert tuple(a.stack for a in plan.added) == added
    assert plan.to_deploy == to_deploy
    assert plan.order == RESUMED.order


@pytest.mark.parametrize("status, words", [
    (None, "does not exist"),
    ("DELETE_COMPLETE", "deleted"),
    ("ROLLBACK_COMPLETE", "creation failed and was rolled back"),
    ("UPDATE_ROLLBACK_COMPLETE", "runs the version before it"),
    ("REVIEW_IN_PROGRESS", "never created"),
    # Deployed, at what it ran before an import that was undone: "not deployed" said what it is not.
    ("IMPORT_ROLLBACK_COMPLETE", "an import of resources into it was rolled back (IMPORT_ROLLBACK_COMPLETE): it runs "
                                 "what it ran before that import"),
    ("UPDATE_FAILED", "it is UPDATE_FAILED, not deployed"),
])
def test_each_stack_added_says_why(status, words):
    plan = confirm_skipped(RESUMED, {"A": status, "B": "CREATE_COMPLETE"})
    (added,) = plan.added
    assert added.stack == "A" and added.status == status and words in added.reason


def test_a_stack_the_app_gained_before_from_stack_is_deployed_with_the_rest():
    # The earlier run failed at the Fargate stack; since then the app gained a stack it depends on
    # ("WebordinaryLogsStack"), ordered before it, which no run deployed.
    app = {**WEBORDINARY, "WebordinaryLogsStack": (),
           "WebordinaryFargateStack": (*WEBORDINARY["WebordinaryFargateStack"], "WebordinaryLogsStack")}
    stacks = ["WebordinaryLogsStack", *WEBORDINARY]
    plan = plan_deployment(stacks, app, from_stack="WebordinaryFargateStack")
    assert "WebordinaryLogsStack" in plan.skipped
    statuses = {s: "CREATE_COMPLETE" for s in plan.skipped} | {"WebordinaryLogsStack": None}
    confirmed = confirm_skipped(plan, statuses)
    assert confirmed.to_deploy == ("WebordinaryLogsStack", "WebordinaryFargateStack", "WebordinaryMonitoringStack")
    assert "WebordinaryLogsStack" not in confirmed.skipped


@pytest.mark.parametrize("status", ["UPDATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
                                    "DELETE_IN_PROGRESS"])
def test_a_stack_still_changing_refuses_the_resume(status):
    with pytest.raises(PlanRefused, match=f"B is {status}: CloudFormation is still working on it"):
        confirm_skipped(RESUMED, {"A": "CREATE_COMPLETE", "B": status})


def test_a_plan_that_skips_nothing_is_unchanged():
    plan = plan_deployment(["A", "B", "C"], ABC)
    assert confirm_skipped(plan, {}) == plan


@pytest.mark.parametrize("statuses, refused", [
    # Deployed in some version: its exports are there for the stacks depending on it.
    ({"A": "CREATE_COMPLETE", "B": "UPDATE_ROLLBACK_COMPLETE", "C": "UPDATE_IN_PROGRESS"}, []),
    ({}, []),  # not read (another account): taken at its word
    ({"A": None, "B": "ROLLBACK_COMPLETE", "C": "CREATE_COMPLETE"}, ["A (does not exist)", "B (ROLLBACK_COMPLETE)"]),
    ({"A": "DELETE_COMPLETE", "B": "REVIEW_IN_PROGRESS"}, ["A (DELETE_COMPLETE)", "B (REVIEW_IN_PROGRESS)"]),
])
def test_stacks_named_as_already_deployed_are_refused_when_nothing_of_them_is(statuses, refused):
    if not refused:
        check_already_deployed(statuses)
        return
    with pytest.raises(PlanRefused, match="named as already deployed") as caught:
        check_already_deployed(statuses)
    assert f"nothing deployed: {', '.join(refused)};" in str(caught.value)


@pytest.mark.parametrize("statuses, refused", [
    ({"A": "CREATE_COMPLETE", "B": None, "C": "UPDATE_ROLLBACK_COMPLETE", "D": "REVIEW_IN_PROGRESS"}, ""),
    ({"A": "UPDATE_IN_PROGRESS", "B": "CREATE_COMPLETE", "C": "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"},
     "A is UPDATE_IN_PROGRESS; C is UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: CloudFormation is still working on it"),
])
def test_stacks_to_deploy_still_changing_refuse_the_run(statuses, refused):
    if not refused:
        check_not_changing(statuses)
        return
    with pytest.raises(PlanRefused, match=refused):
        check_not_changing(statuses)


@pytest.mark.parametrize("statuses, refused", [
    # cdk goes over these itself: an update rolled back, a failed creation (it deletes and re-creates it).
    ({"A": "UPDATE_ROLLBACK_COMPLETE", "B": "ROLLBACK_COMPLETE", "D": None}, []),
    # A failed creation whose rollback failed too: cdk's deletion of it fails where the rollback did.
    ({"A": "ROLLBACK_FAILED", "B": "ROLLBACK_COMPLETE"},
     ["A is ROLLBACK_FAILED: its creation failed and so did its rollback",
      "delete it (aws cloudformation delete-stack --stack-name A --region eu-west-1;"]),
    ({"A": "UPDATE_ROLLBACK_FAILED", "B": "CREATE_COMPLETE"},
     ["A is UPDATE_ROLLBACK_FAILED: ", "continue-update-rollback --stack-name A --region eu-west-1"]),
    ({"A": "CREATE_FAILED", "B": "DELETE_FAILED"},
     ["A is CREATE_FAILED: ", "rollback-stack --stack-name A --region eu-west-1",
      "B is DELETE_FAILED: ", "delete-stack --stack-name B --region us-west-2"]),
    # An import whose rollback failed: CloudFormation takes no update of it ("is in IMPORT_ROLLBACK_FAILED
    # state and can not be updated"), and cdk's error came only once the stacks before it were deployed.
    ({"A": "IMPORT_ROLLBACK_FAILED", "B": "IMPORT_ROLLBACK_COMPLETE"},
     ["A is IMPORT_ROLLBACK_FAILED: ", "describe-stack-events --stack-name A --region eu-west-1",
      "delete-stack --stack-name A --region eu-west-1"]),
])
def test_stacks_to_deploy_cloudformation_takes_no_update_of_refuse_the_run(statuses, refused):
    regions = {"A": "eu-west-1", "B": "us-west-2"}
    if not refused:
        check_not_stuck(statuses, regions)
        return
    with pytest.raises(PlanRefused) as caught:
        check_not_stuck(statuses, regions)
    said = str(caught.value)
    assert all(part in said for part in refused), said
    assert said.endswith("then run again (nothing was deployed)"), said


def test_a_stuck_stacks_refusal_gives_cloudformations_reason_for_its_status():
    # The status alone left a person to open the console to learn which resource failed, and why.
    reason = "The following resource(s) failed to update: [Queue4A7E3555]. Queue: AccessDenied"
    with pytest.raises(PlanRefused) as caught:
        check_not_stuck({"A": "UPDATE_ROLLBACK_FAILED", "B": "DELETE_FAILED"}, {"A": "us-west-2"},
                        reasons={"A": reason, "B": None})
    said = str(caught.value)
    assert f"A is UPDATE_ROLLBACK_FAILED (CloudFormation says: {reason}): its last update failed" in said, said
    assert "B is DELETE_FAILED: its deletion failed" in said, said
