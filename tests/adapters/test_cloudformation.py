"""CloudFormationStacks against the embedded AWS: delete an old stack (and what it made), refuse
protected and live ones, and report a stack already gone as gone."""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import boto3
import pytest
from botocore.stub import Stubber

from rollway.aws.cloudformation import CloudFormationStacks, StackDeleteFailed, StackProtected, failure_reasons
from rollway.cleanup import Holding
from rollway.targets import Targets
from tests.flows.moto_env import queue_exists

OLD = "webordinary-old-stack"
SID = f"arn:aws:cloudformation:us-west-2:123456789012:stack/{OLD}/1"  # the stack's id in the Stubber tests


def template(queue: str) -> str:
    return json.dumps({"Resources": {"OldQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}}})


def create(aws, name: str, queue: str, **extra) -> str:
    return aws.get_client("cloudformation").create_stack(StackName=name, TemplateBody=template(queue),
                                                         **extra)["StackId"]


@dataclass(frozen=True)
class Account:
    get_client: Callable[[str], Any]
    targets: Targets


@pytest.fixture
def aws(embedded_aws, targets, _get_client_for_region) -> Account:
    """A reset embedded account without the service topology: these tests need none, and
    provisioning it costs a second or two per test."""
    embedded_aws.reset()
    return Account(get_client=_get_client_for_region(targets.region), targets=targets)


@pytest.fixture
def stacks(aws) -> CloudFormationStacks:
    return CloudFormationStacks(aws.get_client("cloudformation"), keep=aws.targets.stacks)


def test_an_old_stack_is_deleted_with_its_resources_and_a_rerun_reports_it_gone(aws, stacks):
    create(aws, OLD, "webordinary-old-queue")
    assert stacks.describe(OLD).status == "CREATE_COMPLETE" and queue_exists(aws, "webordinary-old-queue")
    progress: list[str] = []

    assert stacks.delete(OLD, timeout_seconds=30, on_progress=progress.append) == "deleted"

    assert stacks.describe(OLD).status == "DELETE_COMPLETE" and stacks.describe(OLD).gone
    assert not queue_exists(aws, "webordinary-old-queue"), "the stack's queue went with it"
    assert progress[0] == f"stack {OLD}: deletion requested (was CREATE_COMPLETE)"
    assert progress[-1] == f"stack {OLD}: DELETE_COMPLETE"
    again: list[str] = []
    assert stacks.delete(OLD, timeout_seconds=30, on_progress=again.append) == "already_gone"
    assert again == [f"stack {OLD} does not exist: already gone"]


def test_a_stacks_state_is_its_id_status_and_last_update_read_in_one_describe(aws, stacks, watch_calls):
    """What a deploy compares before and after, to tell whether CloudFormation changed the stack."""
    assert stacks.state(OLD).status is None  # no such stack
    first = create(aws, OLD, "webordinary-old-queue")
    calls = watch_calls(aws.get_client("cloudformation"))
    state = stacks.state(OLD)
    assert calls == ["DescribeStacks"]
    assert (state.stack_id, state.status, state.last_updated) == (first, "CREATE_COMPLETE", None)
    assert stacks.status(OLD) == "CREATE_COMPLETE"
    aws.get_client("cloudformation").delete_stack(StackName=OLD)
    again = create(aws, OLD, "webordinary-old-queue")
    assert stacks.state(OLD).stack_id == again != first  # made again: another stack


def test_a_stack_updated_again_is_seen_to_move_by_its_newest_event(aws, stacks, watch_calls):
    """An update of a stack already UPDATE_COMPLETE leaves its status, and moto sets no
    LastUpdatedTime: its newest event is what tells a deploy that CloudFormation changed it, by
    UpdateStack or by an executed change set (what cdk deploys with)."""
    cloudformation = aws.get_client("cloudformation")
    calls = watch_calls(cloudformation)
    assert stacks.seen(OLD).last_event is None and calls == ["DescribeStacks"]  # no such stack: no events read
    create(aws, OLD, "webordinary-old-queue")
    cloudformation.update_stack(StackName=OLD, TemplateBody=template("webordinary-old-queue-2"))
    calls.clear()
    first = stacks.seen(OLD)
    assert calls == ["DescribeStacks", "DescribeStackEvents"]
    assert first.last_event is not None and stacks.seen(OLD) == first  # nothing ran: the same
    cloudformation.update_stack(StackName=OLD, TemplateBody=template("webordinary-old-queue-3"))
    again = stacks.seen(OLD)
    assert (again.status, again.last_updated) == (first.status, first.last_updated)
    assert again.last_event != first.last_event
    cloudformation.create_change_set(StackName=OLD, ChangeSetName="next", ChangeSetType="UPDATE",
                                     TemplateBody=template("webordinary-old-queue-4"))
    assert stacks.seen(OLD) == again  # a change set made, not executed: nothing changed yet
    cloudformation.execute_change_set(StackName=OLD, ChangeSetName="next")
    assert stacks.seen(OLD).last_event != again.last_event


def test_a_stack_updated_again_since_it_was_judged_is_not_deleted(aws, stacks, watch_calls):
    """Updated again between the plan and its deletion: UPDATE_COMPLETE before and after, and no
    LastUpdatedTime (moto sets none; AWS's does not move for a failed update rolled back within
    the second). Its newest event says it moved, as it tells a deploy; DeleteStack deleted
    whatever the update had made of it."""
    from rollway.aws.cloudformation import StackChanged

    cloudformation = aws.get_client("cloudformation")
    create(aws, OLD, "webordinary-old-queue")
    cloudformation.update_stack(StackName=OLD, TemplateBody=template("webordinary-old-queue-2"))
    judged = stacks.describe(OLD)
    assert (judged.status, judged.last_updated) == ("UPDATE_COMPLETE", None) and judged.last_event, judged
    cloudformation.update_stack(StackName=OLD, TemplateBody=template("webordinary-old-queue-3"))
    calls = watch_calls(cloudformation)

    with pytest.raises(StackChanged) as kept:
        stacks.delete(OLD, timeout_seconds=30, judged=judged)

    assert "DeleteStack" not in calls and stacks.state(OLD).status == "UPDATE_COMPLETE"
    assert "CloudFormation has worked on it since the plan read it: its newest event is " in str(kept.value), kept.value
    # Judged as it is now, it goes.
    assert stacks.delete(OLD, timeout_seconds=30, judged=stacks.describe(OLD)) == "deleted"


def test_a_stack_that_never_existed_is_reported_gone_without_a_delete_call(aws, stacks, watch_calls):
    calls = watch_calls(aws.get_client("cloudformation"))
    state = stacks.describe("never-was")
    assert (state.status, state.gone, state.similar) == (None, True, ())
    assert stacks.delete("never-was", timeout_seconds=30) == "already_gone"
    assert "DeleteStack" not in calls


def test_a_stack_deleted_before_is_told_from_a_name_no_stack_had_which_names_live_stacks_close_to_it(
        aws, stacks, watch_calls):
    """Both were "does not exist": a re-run (or a stack deleted by hand), nothing to do, and a
    misspelt name, the old stack still there under its real one. CloudFormation lists deleted
    stacks for 90 days (ListStacks, DELETE_COMPLETE)."""
    cloudformation = aws.get_client("cloudformation")
    create(aws, OLD, "webordinary-old-queue")
    cloudformation.delete_stack(StackName=OLD)
    create(aws, "webordinary-older-stack", "webordinary-older-queue")
    create(aws, "unrelated", "unrelated-queue")
    live = aws.targets.stacks[0]
    create(aws, live, "webordinary-live-queue")
    calls = watch_calls(cloudformation)

    deleted = stacks.describe(OLD)
    assert (deleted.status, deleted.gone, deleted.similar) == ("DELETE_COMPLETE", True, ())
    assert calls == ["DescribeStacks", "ListStacks"]
    misspelt = stacks.describe("webordinary-oldr-stack")
    assert (misspelt.status, misspelt.gone) == (None, True)
    # Live stacks only (the deleted one is not suggested), and never a live stack of the targets:
    # the plan refuses those.
    assert misspelt.similar == ("webordinary-older-stack",), misspelt
    assert stacks.describe(live[:-1]).similar == ()
    calls.clear()
    assert stacks.describe("webordinary-older-stack").status == "CREATE_COMPLETE"
    assert "ListStacks" not in calls, "a stack that exists is read as before"


def test_termination_protection_is_refused_with_how_to_lift_it(aws, stacks, watch_calls):
    create(aws, OLD, "webordinary-old-queue", EnableTerminationProtection=True)
    assert stacks.describe(OLD).termination_protection
    calls = watch_calls(aws.get_client("cloudformation"))
    with pytest.raises(StackProtected, match=f"--no-enable-termination-protection --stack-name {OLD}"):
        stacks.delete(OLD, timeout_seconds=30)
    # moto does not enforce termination protection itself: the adapter is what kept the stack.
    assert "DeleteStack" not in calls
    assert stacks.describe(OLD).status == "CREATE_COMPLETE" and queue_exists(aws, "webordinary-old-queue")


def test_a_live_stack_is_never_deleted_even_if_asked_in_another_case(aws, stacks, watch_calls):
    live = aws.targets.stacks[4]
    create(aws, live, "live-queue")
    calls = watch_calls(aws.get_client("cloudformation"))
    for name in (live, live.upper()):
        with pytest.raises(StackProtected, match="it is a live stack"):
            stacks.delete(name, timeout_seconds=30)
    assert calls == []
    assert stacks.describe(live).status == "CREATE_COMPLETE" and queue_exists(aws, "live-queue")


def test_a_nested_stack_names_its_root(aws, stacks, watch_calls):
    # moto gives its nested stacks no RootId, so its answer is given the RootId a nested stack has.
    stack_id = create(aws, OLD, "q")
    root = stack_id.replace(f"stack/{OLD}/", "stack/WebordinarySQSStack/")
    client = aws.get_client("cloudformation")

    def with_root(parsed, **_):
        for stack in parsed.get("Stacks", []):
            stack["RootId"] = root

    client.meta.events.register("after-call.cloudformation.DescribeStacks", with_root)
    try:
        assert stacks.describe(OLD).root_stack == "WebordinarySQSStack"
    finally:
        client.meta.events.unregister("after-call.cloudformation.DescribeStacks", with_root)


def test_a_timeout_that_is_not_positive_is_refused_before_any_call(aws, stacks, watch_calls):
    calls = watch_calls(aws.get_client("cloudformation"))
    with pytest.raises(ValueError, match="timeout_seconds must be > 0"):
        stacks.delete(OLD, timeout_seconds=0)
    assert calls == []


def test_a_failed_deletion_names_the_resources_and_their_reasons():
    # DescribeStackEvents, newest first, of a stack whose second deletion failed (moto never fails one).
    sid = "arn:aws:cloudformation:us-west-2:1:stack/old/1"
    stack = {"ResourceType": "AWS::CloudFormation::Stack", "PhysicalResourceId": sid, "StackId": sid,
             "LogicalResourceId": "old"}
    events = [
        {**stack, "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "The following resource(s) failed"},
        {"ResourceType": "AWS::S3::Bucket", "LogicalResourceId": "Logs", "StackId": sid,
         "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "The bucket you tried to delete is not empty"},
        {"ResourceType": "AWS::SQS::Queue", "LogicalResourceId": "Q", "StackId": sid, "ResourceStatus": "DELETE_COMPLETE"},
        {**stack, "ResourceStatus": "DELETE_IN_PROGRESS", "ResourceStatusReason": "User Initiated"},
        {"ResourceType": "AWS::EC2::VPC", "LogicalResourceId": "Old", "StackId": sid,
         "ResourceStatus": "DELETE_FAILED", "ResourceStatusReason": "an earlier attempt"},
    ]
    reasons = failure_reasons(events, "The following resource(s) failed to delete: [Logs].")
    assert reasons == ["Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty"]
    failed = StackDeleteFailed("old", "DELETE_FAILED", reasons)
    assert "not empty" in str(failed) and "run cleanup again" in str(failed)
    assert failure_reasons([], "why the stack says") == ["why the stack says"]
    # Refused as a whole: no resource failed, the stack went back to CREATE_COMPLETE (no reason of
    # its own), and only its DELETE_FAILED event says why.
    refused = [{**stack, "ResourceStatus": "CREATE_COMPLETE"},
               {**stack, "ResourceStatus": "DELETE_FAILED",
                "ResourceStatusReason": "Export old-QueueArn cannot be deleted as it is in use by reader"},
               {**stack, "ResourceStatus": "DELETE_IN_PROGRESS", "ResourceStatusReason": "User Initiated"}]
    assert failure_reasons(refused, None) == ["Export old-QueueArn cannot be deleted as it is in use by reader"]


# --- for the tests botocore's Stubber plays: what moto never does ---------------------------


def stubbed_client():
    """A CloudFormation client for a Stubber: it never reaches an endpoint."""
    return boto3.client("cloudformation", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")


def stack_answer(status: str) -> dict:
    """DescribeStacks' answer for the stack ``OLD`` in ``status``."""
    return {"Stacks": [{"StackName": OLD, "StackId": SID, "StackStatus": status,
                        "CreationTime": "2026-01-01T00:00:00Z"}]}


def event(n: int, logical: str, kind: str, status: str, reason: str = "") -> dict:
    """One of the stack ``OLD``'s events: resource ``logical`` of type ``kind`` reached ``status``."""
    physical = SID if kind == "AWS::CloudFormation::Stack" else f"{logical}-1"
    found = {"EventId": f"e{n}", "StackId": SID, "StackName": OLD, "LogicalResourceId": logical,
             "PhysicalResourceId": physical, "ResourceType": kind, "ResourceStatus": status,
             "Timestamp": "2026-01-01T00:00:00Z"}
    return {**found, "ResourceStatusReason": reason} if reason else found


# The stack OLD's one event before its deletion, and its events once a bucket not empty failed it (newest first).
CREATED = event(1, OLD, "AWS::CloudFormation::Stack", "CREATE_COMPLETE")
BUCKET_NOT_EMPTY = [
    event(4, OLD, "AWS::CloudFormation::Stack", "DELETE_FAILED", "The following resource(s) failed to delete"),
    event(3, "Logs", "AWS::S3::Bucket", "DELETE_FAILED", "The bucket you tried to delete is not empty"),
    event(2, OLD, "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", "User Initiated"), CREATED]


def until_delete_failed(stub: Stubber, created: dict | list[dict], before: str = "CREATE_COMPLETE") -> None:
    """The calls and answers of a deletion until the waiter sees DELETE_FAILED (``created``: the
    stack's one event before it, or its newest page then; ``before``: its status then)."""
    stub.add_response("describe_stacks", stack_answer(before), {"StackName": OLD})
    stub.add_response("describe_stack_events", {"StackEvents": created if isinstance(created, list) else [created]},
                      {"StackName": SID})
    stub.add_response("delete_stack", {}, {"StackName": SID})
    stub.add_response("describe_stacks", stack_answer("DELETE_FAILED"), {"StackName": SID})  # the waiter's poll


def deletion_failed(first: Callable[[Stubber], None] = lambda stub: None, *, newest: dict | list[dict] = CREATED,
                    before: str = "CREATE_COMPLETE") -> tuple[StackDeleteFailed, list[str]]:
    """The deletion of ``OLD`` a bucket not empty fails, played by a Stubber (``until_delete_failed``
    from ``newest`` and ``before``, ``first``'s calls and answers, then the events' one read), and its
    progress lines."""
    client = stubbed_client()
    with Stubber(client) as stub:
        until_delete_failed(stub, newest, before)
        first(stub)
        # One read gives both the new events' lines and the failure's reasons.
        stub.add_response("describe_stack_events", {"StackEvents": BUCKET_NOT_EMPTY}, {"StackName": SID})
        progress: list[str] = []
        with pytest.raises(StackDeleteFailed) as failed:
            CloudFormationStacks(client, sleep=lambda _: None).delete(OLD, timeout_seconds=60,
                                                                     on_progress=progress.append)
        stub.assert_no_pending_responses()
    return failed.value, progress


def test_a_deletion_that_ends_in_delete_failed_reports_the_events_reasons():
    # moto never fails a deletion, so this one path is played by botocore's Stubber: the calls
    # and answers CloudFormation gives when a bucket that is not empty blocks the deletion.
    failed, progress = deletion_failed()
    assert failed.status == "DELETE_FAILED"
    assert failed.reasons == ("Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty",)
    # "Retain those resources" said nothing of how: the command that deletes the stack and keeps them.
    assert failed.failed == ("Logs",)
    assert f"`aws cloudformation delete-stack --stack-name {OLD} --retain-resources Logs`" in str(failed)
    assert f"stack {OLD}: Logs (AWS::S3::Bucket) DELETE_FAILED: The bucket you tried to delete is not empty" in progress


def test_an_old_stack_that_holds_a_resource_production_uses_is_refused(aws, stacks):
    # The old stack made the queue the live service still reads: deleting it deletes the queue.
    from rollway.cleanup import CleanupSpec, plan_cleanup

    create(aws, OLD, "webordinary-edit-input")
    create(aws, "webordinary-older-stack", "webordinary-older-queue")
    spec = CleanupSpec(old_stacks=(OLD, "webordinary-older-stack"))
    plan = plan_cleanup(spec, aws.targets, stacks={name: stacks.describe(name) for name in spec.old_stacks},
                        in_use=(), images=())

    assert plan.delete_stacks == ("webordinary-older-stack",)
    (refusal,) = plan.refusals
    assert refusal.name == OLD
    assert "it holds webordinary-edit-input (a queue in Targets.queues)" in refusal.reason


def test_an_old_stack_stuck_in_delete_failed_is_not_refused_for_what_its_first_deletion_deleted(aws, stacks):
    # An earlier deletion deleted the old queue, then stopped at DELETE_FAILED on another resource;
    # the new architecture made a queue of the same name since. ListStackResources still lists the
    # old one (DELETE_COMPLETE): the stack was refused for holding the live queue, which deleting it
    # again cannot touch, and stayed in DELETE_FAILED run after run.
    from rollway.cleanup import CleanupSpec, plan_cleanup
    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-edit-input")
    cloudformation = aws.get_client("cloudformation")

    def failed_deletion(parsed, **_):
        for stack in parsed.get("Stacks", []):
            stack["StackStatus"] = "DELETE_FAILED"
        for summary in parsed.get("StackResourceSummaries", []):
            summary["ResourceStatus"] = "DELETE_COMPLETE"

    with on_operation(cloudformation, "after-call", failed_deletion, operation=None):
        state = stacks.describe(OLD)
    assert state.status == "DELETE_FAILED"
    plan = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), aws.targets, stacks={OLD: state}, in_use=(), images=())

    assert plan.delete_stacks == (OLD,) and not plan.refusals, plan.refusals
    assert state.resources == (), "what its first deletion deleted is not what deleting it deletes"


def test_an_old_stack_whose_deletion_policy_keeps_the_queue_production_reads_is_deleted_and_the_queue_stays(
        aws, stacks):
    from rollway.cleanup import CleanupSpec, plan_cleanup

    body = {"Resources": {"Input": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain",
                                    "Properties": {"QueueName": "webordinary-edit-input"}}}}
    aws.get_client("cloudformation").create_stack(StackName=OLD, TemplateBody=json.dumps(body))
    spec = CleanupSpec(old_stacks=(OLD,))
    plan = plan_cleanup(spec, aws.targets, stacks={OLD: stacks.describe(OLD)}, in_use=(), images=())
    assert plan.delete_stacks == (OLD,) and not plan.refusals

    assert stacks.delete(OLD, timeout_seconds=30) == "deleted"
    assert queue_exists(aws, "webordinary-edit-input"), "kept by its DeletionPolicy, as the plan said"


def with_nested_stack(aws, queue: str) -> str:
    """OLD made with a nested stack holding the queue ``queue`` beside its own queue: the nested
    stack's id."""
    s3 = aws.get_client("s3")
    if "old-templates" not in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket="old-templates", CreateBucketConfiguration={"LocationConstraint": aws.targets.region})
    s3.put_object(Bucket="old-templates", Key="queues.json", Body=template(queue))
    cloudformation = aws.get_client("cloudformation")
    cloudformation.create_stack(StackName=OLD, TemplateBody=json.dumps({"Resources": {
        "Queues": {"Type": "AWS::CloudFormation::Stack",
                   "Properties": {"TemplateURL": "https://old-templates.s3.amazonaws.com/queues.json"}},
        "OldQueue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "webordinary-old-queue"}}}}))
    (nested,) = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(StackName=OLD)[
        "StackResourceSummaries"] if r["ResourceType"] == "AWS::CloudFormation::Stack"]
    return nested


def test_an_old_stack_whose_nested_stack_holds_a_resource_production_uses_is_refused(aws, stacks):
    # Deleting a stack deletes its nested stacks and what they made; ListStackResources names a
    # nested stack only by its id, so the live queue inside one was deleted with the old stack.
    from rollway.cleanup import CleanupSpec, plan_cleanup

    with_nested_stack(aws, "webordinary-edit-input")

    state = stacks.describe(OLD)
    plan = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), aws.targets, stacks={OLD: state}, in_use=(), images=())

    assert plan.delete_stacks == ()
    (refusal,) = plan.refusals
    nested = next(holding.nested_in for r, holding in state.listings() if r.endswith("/webordinary-edit-input"))
    assert nested.startswith(f"{OLD}-Queues")
    assert (f"it holds webordinary-edit-input (a queue in Targets.queues), in its nested stack {nested}"
            in refusal.reason)


def test_a_stack_whose_nested_stack_was_updated_since_it_was_judged_is_not_deleted(aws, stacks, watch_calls):
    """A nested stack updated on its own adds no event to its root, nor moves its status: the root
    read right before DeleteStack passed for the stack judged, and its deletion took whatever the
    update had made of the nested stack. Each nested stack's newest event is read again too."""
    from rollway.aws.cloudformation import StackChanged

    cloudformation = aws.get_client("cloudformation")
    nested = with_nested_stack(aws, "webordinary-old-inner")
    judged = stacks.describe(OLD)
    cloudformation.update_stack(StackName=nested, TemplateBody=template("webordinary-old-inner"))
    calls = watch_calls(cloudformation)

    with pytest.raises(StackChanged) as kept:
        stacks.delete(OLD, timeout_seconds=30, judged=judged)

    assert "DeleteStack" not in calls and stacks.state(OLD).status == "CREATE_COMPLETE"
    name = cloudformation.describe_stacks(StackName=nested)["Stacks"][0]["StackName"]
    assert (f"a nested stack of it was updated on its own: {name} has events the plan did not read"
            in str(kept.value)), kept.value
    # Judged as it is now, it goes; so does one whose nested stack was deleted on its own since.
    again = stacks.describe(OLD)
    assert stacks.delete(OLD, timeout_seconds=30, judged=again) == "deleted"
    nested = with_nested_stack(aws, "webordinary-old-inner")
    judged = stacks.describe(OLD)
    cloudformation.delete_stack(StackName=nested)
    assert stacks.delete(OLD, timeout_seconds=30, judged=judged) == "deleted"


@contextmanager
def imports_answered(client, imports: dict[str, list[str]]) -> Iterator[None]:
    """``client`` answering ListImports (moto has not implemented it) as CloudFormation does:
    the importing stacks, or a ValidationError for an export no stack imports."""
    def answer(params, **_):
        export = params["body"]["ExportName"]
        if imports.get(export):
            return SimpleNamespace(status_code=200, headers={}), {"Imports": imports[export], "ResponseMetadata": {}}
        return SimpleNamespace(status_code=400, headers={}), {"ResponseMetadata": {}, "Error": {
            "Code": "ValidationError", "Message": f"Export '{export}' is not imported by any stack."}}

    client.meta.events.register("before-call.cloudformation.ListImports", answer)
    try:
        yield
    finally:
        client.meta.events.unregister("before-call.cloudformation.ListImports", answer)


def test_an_old_stack_whose_export_another_stack_imports_is_refused_unless_that_stack_goes_first(aws, stacks):
    # CloudFormation does not delete a stack whose export is imported: the deletion failed after
    # the run had deleted the image tags, and the dry run had said it would delete the stack.
    from rollway.cleanup import CleanupSpec, plan_cleanup

    client = aws.get_client("cloudformation")
    exporting = json.loads(template("webordinary-old-queue"))
    exporting["Outputs"] = {
        "Arn": {"Value": {"Fn::GetAtt": ["OldQueue", "Arn"]}, "Export": {"Name": "old-queue-arn"}},
        "Url": {"Value": {"Ref": "OldQueue"}, "Export": {"Name": "old-queue-url"}}}
    client.create_stack(StackName=OLD, TemplateBody=json.dumps(exporting))
    importing = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {
        "TopicName": {"Fn::Select": [5, {"Fn::Split": [":", {"Fn::ImportValue": "old-queue-arn"}]}]}}}}}
    client.create_stack(StackName="webordinary-reader", TemplateBody=json.dumps(importing))

    with imports_answered(client, {"old-queue-arn": ["webordinary-reader"]}):
        state = stacks.describe(OLD)
        reader = stacks.describe("webordinary-reader")
    assert state.imported_by == {"old-queue-arn": ("webordinary-reader",)}

    def plan(*names: str):
        return plan_cleanup(CleanupSpec(old_stacks=names), aws.targets,
                            stacks={OLD: state, "webordinary-reader": reader}, in_use=(), images=())

    (refusal,) = plan(OLD).refusals
    assert refusal.name == OLD and refusal.reason.startswith(
        "stack(s) webordinary-reader import its export(s) old-queue-arn, and CloudFormation does not delete")
    assert [r.name for r in plan(OLD, "webordinary-reader").refusals] == [OLD], "the importer must go first"
    assert plan("webordinary-reader", OLD).delete_stacks == ("webordinary-reader", OLD)


def test_a_deletion_of_many_resources_reads_every_page_of_events():
    # Played by botocore's Stubber (moto answers every event on one page): 60 resources, the
    # first one deleted failed, so its reason is on the second page of DescribeStackEvents.
    client = stubbed_client()
    created = event(0, OLD, "AWS::CloudFormation::Stack", "CREATE_COMPLETE")
    oldest_first = [event(1, OLD, "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", "User Initiated"),
                    event(2, "Logs", "AWS::S3::Bucket", "DELETE_IN_PROGRESS"),
                    event(3, "Logs", "AWS::S3::Bucket", "DELETE_FAILED", "The bucket you tried to delete is not empty")]
    for i in range(59):
        oldest_first += [event(10 + 2 * i, f"Queue{i}", "AWS::SQS::Queue", "DELETE_IN_PROGRESS"),
                         event(11 + 2 * i, f"Queue{i}", "AWS::SQS::Queue", "DELETE_COMPLETE")]
    oldest_first.append(event(500, OLD, "AWS::CloudFormation::Stack", "DELETE_FAILED", "resource(s) failed to delete"))
    newest_first = list(reversed(oldest_first)) + [created]
    pages = [({"StackEvents": newest_first[:100], "NextToken": "page2"}, {"StackName": SID}),
             ({"StackEvents": newest_first[100:]}, {"StackName": SID, "NextToken": "page2"})]
    with Stubber(client) as stub:
        until_delete_failed(stub, created)
        for answer, asked in pages:  # the progress lines and the failure's reasons, read once
            stub.add_response("describe_stack_events", answer, asked)
        progress: list[str] = []
        with pytest.raises(StackDeleteFailed) as failed:
            CloudFormationStacks(client).delete(OLD, timeout_seconds=60, on_progress=progress.append)
        stub.assert_no_pending_responses()
    assert failed.value.reasons == ("Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty",)
    assert len([line for line in progress if " DELETE_" in line and "deletion requested" not in line]) == 122


def test_what_a_stacks_deletion_policy_keeps_is_read_from_its_yaml_or_json_template(aws, stacks):
    # A hand-written YAML template with CloudFormation's short forms, and CDK's JSON.
    aws.get_client("cloudformation").create_stack(StackName=OLD, TemplateBody="""
Resources:
  Kept:
    Type: AWS::SQS::Queue
    DeletionPolicy: Retain
    Properties:
      QueueName: !Sub "${AWS::StackName}-kept"
  Gone:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: webordinary-old-gone
""")
    create(aws, "webordinary-older-stack", "webordinary-older-queue")
    state = stacks.describe(OLD)
    (kept,) = [r for r in state.resources if r.endswith(f"{OLD}-kept")]
    assert state.retained == (kept,) and len(state.resources) == 2
    assert stacks.describe("webordinary-older-stack").retained == ()

    assert stacks.delete(OLD, timeout_seconds=30) == "deleted"
    assert queue_exists(aws, f"{OLD}-kept") and not queue_exists(aws, "webordinary-old-gone")


@pytest.mark.parametrize("change", ["updated", "made again", "protected"])
def test_a_stack_changed_since_it_was_judged_is_not_deleted(aws, stacks, watch_calls, change):
    # The plan judged the stack; cleanup deletes it many minutes later (image tags first, other
    # stacks waited on). Deleting by name deleted whatever the stack had become by then.
    from rollway.aws.cloudformation import StackChanged
    from tests.botocore_events import on_operation

    client = aws.get_client("cloudformation")
    create(aws, OLD, "webordinary-old-queue")
    judged = stacks.describe(OLD)
    assert judged.stack_id and judged.last_updated is None, judged
    answered: dict[str, Any] = {}
    if change == "updated":
        # Updated twice: UPDATE_COMPLETE either way, only LastUpdatedTime says (moto leaves it out).
        from datetime import datetime, timezone

        answered["LastUpdatedTime"] = datetime(2026, 12, 4, 15, 0, tzinfo=timezone.utc)
        why = "it was updated at 2026-12-04T15:00:00+00:00, after the plan read it"
    elif change == "made again":
        client.delete_stack(StackName=OLD)
        create(aws, OLD, "webordinary-old-queue")
        why = "it is a new stack of that name"
    else:  # moto has no UpdateTerminationProtection: its answer says what AWS would
        answered["EnableTerminationProtection"] = True
        why = "termination protection was turned on"

    def as_aws_answers(parsed, **_):
        for stack in parsed.get("Stacks", []):
            stack.update(answered)

    calls = watch_calls(client)
    with on_operation(client, "after-call", as_aws_answers, operation="DescribeStacks"):
        with pytest.raises(StackChanged) as kept:
            stacks.delete(OLD, timeout_seconds=30, judged=judged)

    assert "DeleteStack" not in calls
    said = str(kept.value)
    assert said.startswith(f"stack {OLD!r} was not deleted: it changed after the plan judged it ("), said
    assert why in str(kept.value), kept.value
    assert stacks.describe(OLD).status == "CREATE_COMPLETE" and queue_exists(aws, "webordinary-old-queue")
    # Unchanged, it goes as before.
    assert stacks.delete(OLD, timeout_seconds=30, judged=stacks.describe(OLD)) == "deleted"


def test_the_bootstrap_version_is_the_toolkit_stacks_output(aws):
    # What cdk checks a stack's requiresBootstrapStackVersion against: the toolkit stack's BootstrapVersion output.
    stacks = CloudFormationStacks(aws.get_client("cloudformation"))
    assert stacks.bootstrap_version("CDKToolkit") is None  # no such stack
    body = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
            "Outputs": {"BootstrapVersion": {"Value": "21"}}}
    aws.get_client("cloudformation").create_stack(StackName="CDKToolkit", TemplateBody=json.dumps(body))
    assert stacks.bootstrap_version("CDKToolkit") == 21
    body["Outputs"] = {}
    aws.get_client("cloudformation").create_stack(StackName="OtherToolkit", TemplateBody=json.dumps(body))
    assert stacks.bootstrap_version("OtherToolkit") is None  # none given: not judged


def test_a_read_throttled_while_waiting_for_the_deletion_is_read_again_within_the_wait(aws, monkeypatch):
    # The deletion asked, a read of its progress AWS throttled past botocore's retries stopped the
    # wait (and the run, which then said CloudFormation "may" have begun), though another read a
    # few seconds later saw the stack gone. The waits are recorded, not slept (20 s of real time).
    import botocore.waiter
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    monkeypatch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=lambda _: None))
    waited: list[float] = []
    stacks = CloudFormationStacks(aws.get_client("cloudformation"), keep=aws.targets.stacks, sleep=waited.append)
    create(aws, OLD, "webordinary-old-queue")
    judged = stacks.describe(OLD)
    client = aws.get_client("cloudformation")
    deleting: list[str] = []
    throttled: list[str] = []

    def asked(model, **_):
        if model.name == "DeleteStack":
            deleting.append(model.name)
        elif deleting and model.name in ("DescribeStacks", "DescribeStackEvents") and len(throttled) < 3:
            throttled.append(model.name)
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, model.name)

    progress: list[str] = []
    with on_operation(client, "before-call", asked, operation=None):
        outcome = stacks.delete(OLD, timeout_seconds=20, on_progress=progress.append, judged=judged)

    assert outcome == "deleted" and len(throttled) == 3 and len(waited) == 3, waited
    assert stacks.describe(OLD).status == "DELETE_COMPLETE"
    assert any("Throttling" in line and "still waiting" in line for line in progress), progress


@pytest.mark.parametrize("answered", [0, 1])
def test_a_deletion_whose_progress_reads_stay_throttled_says_it_was_sent_and_what_was_last_seen(aws, answered):
    # The reads of a deletion's progress throttled until the wait's end raised the last read's own
    # ClientError: the run said "Throttling ... DescribeStacks", neither that DeleteStack had been
    # sent nor what the stack was last seen doing, and a person could take it that nothing was done.
    from botocore.exceptions import ClientError

    from rollway.aws.cloudformation import StackDeleteUnfollowed
    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-old-queue")
    client = aws.get_client("cloudformation")
    stacks = CloudFormationStacks(client, keep=aws.targets.stacks)
    judged = stacks.describe(OLD)
    deleting: list[str] = []
    reads: list[str] = []

    def throttled(model, context, **_):
        if model.name == "DeleteStack":
            deleting.append(model.name)
        elif deleting and model.name == "DescribeStacks":
            reads.append(model.name)
            # The waiter's first poll, then the progress read ``answered`` times (answered below).
            if len(reads) != 2 or not answered:
                raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, model.name)
            context["answer_in_progress"] = True

    def still_deleting(parsed, context, **_):  # moto deletes at once: seen as CloudFormation would show it
        if context.get("answer_in_progress"):
            for stack in parsed.get("Stacks", []):
                stack["StackStatus"] = "DELETE_IN_PROGRESS"

    progress: list[str] = []
    with on_operation(client, "before-call", throttled, operation=None), \
            on_operation(client, "after-call", still_deleting, operation="DescribeStacks"), \
            pytest.raises(StackDeleteUnfollowed) as unfollowed:
        stacks.delete(OLD, timeout_seconds=2, on_progress=progress.append, judged=judged)

    said = str(unfollowed.value)
    assert said.startswith(f"stack '{OLD}': DeleteStack was sent and CloudFormation took it, but the deletion could "
                           "not be followed: the reads of its progress were throttled, failed on AWS's side or got no "
                           "connection until the wait ended after 2 s, the last with Throttling on DescribeStacks: "
                           "Rate exceeded. "), said
    if answered:
        assert unfollowed.value.last_status == "DELETE_IN_PROGRESS"
        assert unfollowed.value.seen_seconds_ago is not None
        assert re.search(r"It was last seen DELETE_IN_PROGRESS, (\d+ s|under a second) before the wait ended; ", said), said
    else:
        assert unfollowed.value.last_status == "CREATE_COMPLETE" and unfollowed.value.seen_seconds_ago is None
        assert "It was last seen CREATE_COMPLETE, right before DeleteStack was sent; " in said, said
    assert "whether it is deleted now is not known. CloudFormation goes on with the deletion: run cleanup again" \
           in said, said
    assert "failed" not in said.replace("failed on AWS's side", ""), said
    assert deleting == ["DeleteStack"]
    assert stacks.describe(OLD).status == "DELETE_COMPLETE", "CloudFormation went on"


def deleted_failing(aws, stacks: CloudFormationStacks, failing: Callable[[str, list[str]], Exception | None], *,
                    timeout_seconds: float = 60, on_progress: Callable[[str], None] = lambda line: None) -> str:
    """``stacks.delete`` of the stack ``OLD``, made and judged here, each call raising what
    ``failing(operation, asked)`` returns (``asked``: the operations asked so far, this one last)."""
    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-old-queue")
    judged = stacks.describe(OLD)
    asked: list[str] = []

    def fail(model, **_):
        asked.append(model.name)
        error = failing(model.name, asked)
        if error is not None:
            raise error

    with on_operation(aws.get_client("cloudformation"), "before-call", fail, operation=None):
        return stacks.delete(OLD, timeout_seconds=timeout_seconds, on_progress=on_progress, judged=judged)


def test_a_stack_read_gone_is_deleted_though_the_reads_of_its_last_events_stay_throttled(aws, stacks):
    # Read DELETE_COMPLETE, its last events throttled (and the waiter's polls): the wait went on
    # to its end, then raised the events' throttle, for a stack known to be gone.
    from botocore.exceptions import ClientError

    def throttled(operation, asked):
        polls = asked[asked.index("DeleteStack") + 1:] if "DeleteStack" in asked else []
        # After DeleteStack: the waiter's polls (every other DescribeStacks) and every DescribeStackEvents.
        if operation == "DescribeStackEvents" and polls or polls.count("DescribeStacks") % 2 == 1:
            return ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, operation)
        return None

    progress: list[str] = []
    assert deleted_failing(aws, stacks, throttled, timeout_seconds=2, on_progress=progress.append) == "deleted"
    assert progress[-1] == f"stack {OLD}: DELETE_COMPLETE"


def test_a_failed_deletion_whose_events_read_is_throttled_is_read_again_at_once():
    # DELETE_FAILED read, the read of its events throttled past botocore's retries: the wait polled
    # the stopped deletion again, where a read of the events a moment later gives the reasons.
    failed, progress = deletion_failed(
        lambda stub: stub.add_client_error("describe_stack_events", "Throttling", "Rate exceeded", 400))
    assert failed.reasons == ("Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty",)
    assert any(f"stack {OLD}: DescribeStackEvents was throttled (Throttling); asking again in" in line
               for line in progress), progress


def test_a_failed_deletion_whose_reasons_stay_throttled_says_it_failed_and_that_its_events_went_unread():
    # The reads of the reasons throttled each time they were asked: the wait went on polling the
    # stack CloudFormation had stopped deleting, to its end, then said the deletion "could not be
    # followed".
    from rollway.aws.errors import THROTTLED_ASKS

    client = stubbed_client()
    with Stubber(client) as stub:
        until_delete_failed(stub, CREATED)
        for _ in range(THROTTLED_ASKS):  # the read of the new events and the reasons
            stub.add_client_error("describe_stack_events", "Throttling", "Rate exceeded", 400)
        with pytest.raises(StackDeleteFailed) as failed:
            CloudFormationStacks(client, sleep=lambda _: None).delete(OLD, timeout_seconds=60)
        stub.assert_no_pending_responses()
    said = str(failed.value)
    assert said.startswith(f"stack '{OLD}' ended in DELETE_FAILED: CloudFormation gave no reason of its own, and its "
                           "events, which name each resource's reason, could not be read (Throttling on "
                           f"DescribeStackEvents: Rate exceeded); `aws cloudformation describe-stack-events "
                           f"--stack-name {OLD}` shows them. "), said
    assert failed.value.unread and failed.value.reasons == ()


def test_a_read_of_its_progress_refused_after_delete_stack_says_it_was_sent(aws, stacks):
    # AccessDenied on the reads of its progress (the waiter's poll, then the wait's own read) after
    # DeleteStack: the wait raised AWS's refusal alone, as if no deletion had been asked.
    from botocore.exceptions import ClientError

    from rollway.aws.cloudformation import StackDeleteUnfollowed

    asked: list[str] = []

    def refused(operation, so_far):
        asked[:] = so_far
        if "DeleteStack" in so_far[:-1] and operation == "DescribeStacks":
            return ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, operation)
        return None

    with pytest.raises(StackDeleteUnfollowed) as unfollowed:
        deleted_failing(aws, stacks, refused)

    said = str(unfollowed.value)
    assert said.startswith(f"stack '{OLD}': DeleteStack was sent and CloudFormation took it, but the deletion could "
                           "not be followed: a read of its progress failed, as asking again would too: AccessDenied on "
                           "DescribeStacks: not authorized. It was last seen CREATE_COMPLETE, right before DeleteStack "
                           "was sent; whether it is deleted now is not known. CloudFormation goes on"), said
    assert asked.count("DescribeStacks") == 1 + 1, "before DeleteStack, then the waiter's poll, refused: not asked again"
    assert isinstance(unfollowed.value.__cause__, ClientError)


def test_a_read_of_its_progress_with_no_connection_is_read_again_at_the_next_poll(aws):
    # No connection for the waiter's poll (botocore's EndpointConnectionError, past its retries):
    # it stopped the wait and the run, where a throttle is read again at the next poll.
    from botocore.exceptions import EndpointConnectionError

    def unreachable(_operation, asked):
        if "DeleteStack" in asked[:-1] and asked.count("DescribeStacks") <= 2:  # the first poll, by the waiter
            return EndpointConnectionError(endpoint_url="https://cloudformation.us-west-2.amazonaws.com/")
        return None

    progress: list[str] = []
    stacks = CloudFormationStacks(aws.get_client("cloudformation"), sleep=lambda _: None)
    assert deleted_failing(aws, stacks, unreachable, on_progress=progress.append) == "deleted"
    assert any("Could not connect to the endpoint URL" in line and "still waiting" in line for line in progress), \
        progress


@pytest.mark.parametrize("read", ["DescribeStacks", "DescribeStackEvents"])
def test_a_read_throttled_right_before_delete_stack_is_asked_again_and_the_stack_deleted_once(aws, read):
    # The reads that judge the stack again right before DeleteStack, throttled past botocore's
    # retries, stopped the run (the deletion not asked) on a busy account: asked again, bounded,
    # DeleteStack itself never more than once.
    from botocore.exceptions import ClientError

    from rollway.aws.errors import THROTTLED_ASKS
    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-old-queue")
    client = aws.get_client("cloudformation")
    waits: list[float] = []
    stacks = CloudFormationStacks(client, keep=aws.targets.stacks, sleep=waits.append)
    judged = stacks.describe(OLD)
    asked: list[str] = []

    def throttled(model, **_):
        asked.append(model.name)
        if model.name == read and "DeleteStack" not in asked and asked.count(read) < THROTTLED_ASKS:
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, read)

    progress: list[str] = []
    with on_operation(client, "before-call", throttled, operation=None):
        outcome = stacks.delete(OLD, timeout_seconds=20, on_progress=progress.append, judged=judged)

    assert outcome == "deleted" and asked.count("DeleteStack") == 1
    assert len(waits) == THROTTLED_ASKS - 1, waits
    assert any(f"{read} was throttled" in line and "asking again" in line for line in progress), progress


@pytest.mark.parametrize("code, asks", [("Throttling", "THROTTLED_ASKS"), ("AccessDenied", 1)])
def test_a_read_before_delete_stack_throttled_every_time_or_refused_stops_without_deleting(aws, code, asks):
    # Bounded, and a refusal is not asked again: it would be refused again.
    from botocore.exceptions import ClientError

    from rollway.aws.errors import THROTTLED_ASKS
    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-old-queue")
    client = aws.get_client("cloudformation")
    stacks = CloudFormationStacks(client, keep=aws.targets.stacks, sleep=lambda _: None)
    judged = stacks.describe(OLD)
    asked: list[str] = []

    def throttled(model, **_):
        asked.append(model.name)
        if model.name == "DescribeStackEvents":
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, model.name)

    with on_operation(client, "before-call", throttled, operation=None), pytest.raises(ClientError, match=code):
        stacks.delete(OLD, timeout_seconds=20, judged=judged)
    expected = THROTTLED_ASKS if asks == "THROTTLED_ASKS" else asks
    assert "DeleteStack" not in asked and asked.count("DescribeStackEvents") == expected
    assert stacks.describe(OLD).status == "CREATE_COMPLETE"


STUCK = "The following resource(s) failed to delete: [OldQueue]. "


@contextmanager
def played_after_delete_stack(aws, throttled: Callable[[str, list[str]], bool], waited: list[float],
                              seen_as: Callable[[list[str]], dict[str, str]]
                              ) -> Iterator[tuple[CloudFormationStacks, Any, list[str]]]:
    """The stacks adapter (with the stack ``OLD`` made and judged) whose calls after DeleteStack are
    played on the embedded AWS: each that ``throttled(operation, after)`` names throttled (``after``:
    the operations asked since DeleteStack, this one last, and each wait as "sleep <s>", recorded in
    ``waited`` too), each DescribeStacks answer updated with ``seen_as(answered)`` (``answered``: the
    calls after DeleteStack that went unthrottled; moto deletes at once). Yields the adapter, the
    stack as judged, and every operation asked."""
    from botocore.exceptions import ClientError

    from tests.botocore_events import on_operation

    create(aws, OLD, "webordinary-old-queue")
    client = aws.get_client("cloudformation")
    asked: list[str] = []
    answered: list[str] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        asked.append(f"sleep {seconds:g}")

    stacks = CloudFormationStacks(client, keep=aws.targets.stacks, sleep=sleep)
    judged = stacks.describe(OLD)

    def asking(model, **_):
        asked.append(model.name)
        if "DeleteStack" in asked[:-1]:
            if throttled(model.name, asked[asked.index("DeleteStack") + 1:]):
                raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, model.name)
            answered.append(model.name)

    def seen(parsed, **_):
        if "DeleteStack" in asked:
            for stack in parsed.get("Stacks", []):
                stack.update(seen_as(answered))

    with on_operation(client, "before-call", asking, operation=None), \
            on_operation(client, "after-call", seen, operation="DescribeStacks"):
        yield stacks, judged, asked


def stuck_deleting(aws, throttled: Callable[[str, list[str]], bool], waited: list[float],
                   progress: list[str]) -> tuple[pytest.ExceptionInfo, list[str]]:
    """The deletion of ``OLD`` on the embedded AWS, CloudFormation seen stopping it at DELETE_FAILED
    (the stack's own reason ``STUCK``), the calls after DeleteStack ``throttled`` names throttled
    (``played_after_delete_stack``); what it raised, and the operations asked since DeleteStack."""
    failed = {"StackStatus": "DELETE_FAILED", "StackStatusReason": STUCK}
    with played_after_delete_stack(aws, throttled, waited, lambda answered: failed) as (stacks, judged, asked), \
            pytest.raises(StackDeleteFailed) as stopped:
        stacks.delete(OLD, timeout_seconds=3, on_progress=progress.append, judged=judged)
    return stopped, asked[asked.index("DeleteStack") + 1:]


def test_a_delete_failed_seen_ends_the_wait_at_once_with_the_stacks_own_reason_though_reads_are_throttled(aws):
    # The waiter's poll saw DELETE_FAILED; every read after it throttled (DescribeStacks, and the
    # events that name each resource's reason): the wait read the status again, throttled, and
    # again, to its end, then said the deletion "could not be followed", for a stack whose
    # failure and CloudFormation's reason for it had been read.
    waited: list[float] = []
    progress: list[str] = []
    stopped, after = stuck_deleting(aws, lambda operation, after: after.count("DescribeStacks") > 1 or
                                    operation == "DescribeStackEvents", waited, progress)

    failed = stopped.value
    assert failed.status == "DELETE_FAILED" and failed.reasons == (STUCK.strip(),), str(failed)
    said = str(failed)
    assert said.startswith(f"stack '{OLD}' ended in DELETE_FAILED: {STUCK.strip()} (its events, which name each "
                           "resource's reason, could not be read: Throttling on DescribeStackEvents: Rate exceeded). "
                           "Fix what is named, then run cleanup again: the deletion is retried"), said
    assert after.count("DescribeStacks") == 1, after  # the waiter's poll alone: its answer is not asked again


def test_a_delete_failed_seen_reads_its_events_once_for_the_new_lines_and_the_reasons(aws):
    # The new events' lines and the failure's reasons were two reads of the same pages one after
    # the other: twice the DescribeStackEvents calls for AWS to throttle on a busy account.
    progress: list[str] = []
    stopped, after = stuck_deleting(aws, lambda operation, after: False, [], progress)

    assert stopped.value.status == "DELETE_FAILED", str(stopped.value)
    assert after.count("DescribeStackEvents") == 1, after
    # Each event of the deletion said once, oldest first, none of those read before DeleteStack.
    said = [line for line in progress if line.startswith(f"stack {OLD}: ") and " DELETE_" in line
            and "deletion requested" not in line]
    assert said and len(said) == len(set(said)), progress
    assert said[0] == f"stack {OLD}: {OLD} (AWS::CloudFormation::Stack) DELETE_IN_PROGRESS: User Initiated", progress
    assert not any("CREATE_" in line for line in progress if "deletion requested" not in line), progress


def test_a_throttled_poll_of_a_deletion_backs_off_before_it_is_asked_again(aws):
    # The waiter's poll throttled past botocore's retries: the wait asked DescribeStacks again at
    # once (throttled again), then every few seconds alike, however long the throttling lasted.
    waited: list[float] = []
    progress: list[str] = []
    stopped, after = stuck_deleting(aws, lambda operation, after: after.count("DescribeStacks") <= 3,
                                    waited, progress)

    assert stopped.value.status == "DELETE_FAILED", str(stopped.value)
    polls = [i for i, asked in enumerate(after) if asked == "DescribeStacks"]
    assert all(after[i + 1].startswith("sleep") for i in polls[:-1]), after  # never asked again without a wait
    assert len(waited) >= 2 and all(later > earlier for earlier, later in zip(waited, waited[1:])), waited
    assert any("Throttling on DescribeStacks" in line and "asking again in" in line for line in progress), progress


def deleting_for_a_while(aws, monkeypatch, throttled: Callable[[str, list[str]], bool], *, timeout_seconds: float,
                         progress: list[str], deleting: bool = True,
                         clock_by_waits: bool = False) -> tuple[str, list[float]]:
    """``delete`` of the stack ``OLD`` on the embedded AWS, seen DELETE_IN_PROGRESS (``deleting``
    False: never) until a DescribeStackEvents after DeleteStack went unthrottled, then as moto has
    it (gone), the calls after DeleteStack ``throttled`` names throttled (``played_after_delete_stack``).
    The waiter's own sleeps are skipped; the outcome, and the waits between reads that failed.
    ``clock_by_waits``: the adapter's clock moves only by those waits, so that a wait of under a
    second is not outrun by the embedded AWS's own calls on a loaded machine."""
    from types import SimpleNamespace

    import botocore.waiter

    monkeypatch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=lambda _: None))
    waited: list[float] = []
    if clock_by_waits:
        import rollway.aws.cloudformation as cloudformation

        started = time.monotonic()
        monkeypatch.setattr(cloudformation, "time", SimpleNamespace(monotonic=lambda: started + sum(waited),
                                                                    sleep=time.sleep))

    def seen_as(answered: list[str]) -> dict[str, str]:
        return {"StackStatus": "DELETE_IN_PROGRESS"} if deleting and "DescribeStackEvents" not in answered else {}

    with played_after_delete_stack(aws, throttled, waited, seen_as) as (stacks, judged, _):
        return stacks.delete(OLD, timeout_seconds=timeout_seconds, on_progress=progress.append, judged=judged), waited


def test_a_throttled_read_of_a_deletions_events_backs_off_as_a_throttled_poll_does(aws, monkeypatch):
    # The poll read DELETE_IN_PROGRESS, then the read of the new events was throttled, again and
    # again: each throttled events read waited the plain poll interval, the poll's answer having
    # started the count again, where a throttled poll waited twice as long each time.
    progress: list[str] = []
    outcome, waited = deleting_for_a_while(
        aws, monkeypatch, lambda operation, after: operation == "DescribeStackEvents"
        and after.count("DescribeStackEvents") <= 3, timeout_seconds=60, progress=progress)

    assert outcome == "deleted"
    assert len(waited) == 3 and all(later > earlier for earlier, later in zip(waited, waited[1:])), waited
    assert any("Throttling on DescribeStackEvents" in line and "asking again in" in line for line in progress), progress


def test_a_wait_under_a_second_is_said_so_not_as_0s(aws, monkeypatch):
    # The poll throttled with less than a second of the wait left: "asking again in 0s, 0s left".
    progress: list[str] = []
    outcome, waited = deleting_for_a_while(aws, monkeypatch, lambda operation, after: after == ["DescribeStacks"],
                                           timeout_seconds=0.9, progress=progress, deleting=False, clock_by_waits=True)

    assert outcome == "deleted" and len(waited) == 1 and waited[0] < 1, waited
    (line,) = [line for line in progress if "asking again in" in line]
    assert line.endswith("still waiting, asking again in under a second, under a second left"), line


def test_a_deletion_still_going_with_under_a_second_of_the_wait_left_says_so_not_0s(aws, monkeypatch):
    # The poll read DELETE_IN_PROGRESS with less than a second of the wait left: its progress line
    # said "still DELETE_IN_PROGRESS, 0s left to wait".
    progress: list[str] = []
    outcome, waited = deleting_for_a_while(aws, monkeypatch, lambda operation, after: False, timeout_seconds=0.9,
                                           progress=progress, clock_by_waits=True)

    assert outcome == "deleted" and waited == [], waited
    assert f"stack {OLD}: still DELETE_IN_PROGRESS, under a second left to wait" in progress, progress


@pytest.mark.parametrize("before", ["CREATE_COMPLETE", "DELETE_IN_PROGRESS"])
def test_a_failed_deletion_whose_start_is_not_among_its_newest_events_reads_a_bounded_number_of_pages(before):
    # No deletion start among the events read: the read walked every page of the stack's events
    # (years of them: one call each), and the reasons were said as if they were all there was.
    # A deletion under way before DeleteStack (a run that stopped waiting for it) began before it
    # was sent: its events read are all its own, not all since DeleteStack.
    from rollway.aws.cloudformation import FAILED_EVENT_PAGES
    from tests.botocore_events import on_operation

    client = stubbed_client()
    newest = [event(9000, OLD, "AWS::CloudFormation::Stack", "DELETE_FAILED", "The following resource(s) failed"),
              event(8999, "Logs", "AWS::S3::Bucket", "DELETE_FAILED", "The bucket you tried to delete is not empty")]
    pages = [newest] + [[event(2 * n, "Logs", "AWS::S3::Bucket", "UPDATE_COMPLETE"),
                         event(2 * n + 1, "Logs", "AWS::S3::Bucket", "UPDATE_IN_PROGRESS")]
                        for n in range(FAILED_EVENT_PAGES + 5, 1, -1)]
    asked: list[str] = []
    with Stubber(client) as stub, on_operation(client, "before-parameter-build",
                                               lambda model, **_: asked.append(model.name), operation=None):
        until_delete_failed(stub, CREATED, before)
        for n, page in enumerate(pages):
            more = {"NextToken": f"page{n + 2}"} if n + 1 < len(pages) else {}
            stub.add_response("describe_stack_events", {"StackEvents": page, **more},
                              {"StackName": SID, **({"NextToken": f"page{n + 1}"} if n else {})})
        with pytest.raises(StackDeleteFailed) as failed:
            CloudFormationStacks(client, sleep=lambda _: None).delete(OLD, timeout_seconds=60)

    after = asked[asked.index("DeleteStack") + 1:]
    assert after.count("DescribeStackEvents") == FAILED_EVENT_PAGES, after
    read = 2 * FAILED_EVENT_PAGES
    assert failed.value.reasons == ("Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty",)
    assert failed.value.read_back == read
    # All read are newer than the events read before DeleteStack, or than the start of a deletion
    # under way then: none is an earlier attempt's.
    assert (f"The bucket you tried to delete is not empty (read from its newest {read} events only, all of this "
            "deletion, which do not reach back to its start: a resource that failed before them is not named; "
            f"`aws cloudformation describe-stack-events --stack-name {OLD}` shows them all). Fix what is named"
            ) in str(failed.value), str(failed.value)


ROLE_TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                      "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}


def table_resource(name: str) -> dict[str, Any]:
    """A template's DynamoDB table named ``name``."""
    return {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": name, "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}]}}


def planned_beside_a_log_group(aws, stacks, table: str, group: str, *, role: str | None = None,
                               **logs: Any) -> tuple[dict[str, Any], Any]:
    """The stacks ``OLD`` (a table ``table``, and a role ``role`` if given) and webordinary-logs-stack
    (a log group ``group``) as described, and the plan deleting both while a task definition in
    use sends its logs where ``logs`` (ImageUse's log group fields) says."""
    from rollway.cleanup import CleanupSpec, ImageUse, plan_cleanup

    resources: dict[str, Any] = {"Table": table_resource(table)}
    if role is not None:
        resources["Role"] = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": role,
                                                                      "AssumeRolePolicyDocument": ROLE_TRUST}}
    cloudformation = aws.get_client("cloudformation")
    cloudformation.create_stack(StackName=OLD, TemplateBody=json.dumps({"Resources": resources}))
    cloudformation.create_stack(StackName="webordinary-logs-stack", TemplateBody=json.dumps({"Resources": {
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": group}}}}))
    described = {name: stacks.describe(name) for name in (OLD, "webordinary-logs-stack")}
    use = ImageUse(task_definition=f"arn:aws:ecs:us-west-2:123456789012:task-definition/{aws.targets.task_family}:2",
                   why="the stable service deploys it", image="webordinary:2.0.0", **logs)
    return described, plan_cleanup(CleanupSpec(old_stacks=tuple(described)), aws.targets, stacks=described,
                                   in_use=[use], images=())


def test_a_firelens_template_of_placeholders_keeps_the_log_groups_it_fits_not_a_table_or_a_role(aws, stacks):
    # ``${service}-${task}`` fits every name with a dash in it: a table's physical id, or a role's, is
    # its bare name as a log group's is, and the stack holding one was refused "because it may be a
    # log group" the template writes to, for a resource no log group at all.
    described, planned = planned_beside_a_log_group(aws, stacks, "webordinary-old-table", "webordinary-old-logs",
                                                    role="webordinary-old-role",
                                                    log_group_templates=("${service}-${task}",))

    reasons = {refusal.name: refusal.reason for refusal in planned.refusals}
    assert set(reasons) == {"webordinary-logs-stack"}, reasons
    assert reasons["webordinary-logs-stack"].startswith("it holds webordinary-old-logs (the log group template '${service}-${task}' "), \
        reasons
    assert planned.delete_stacks == (OLD,)
    assert [(holding.type, holding.retained) for holding in described[OLD].holdings] == [
        ("AWS::DynamoDB::Table", False), ("AWS::IAM::Role", False)]
    assert described["webordinary-logs-stack"].holdings == (Holding(type="AWS::Logs::LogGroup"),)


def test_a_deletion_still_going_when_the_wait_ends_says_the_wait_as_its_progress_lines_do(aws, monkeypatch):
    # Its progress said "45 s left to wait", and its end "still DELETE_IN_PROGRESS after 45s": two ways
    # of saying one wait in the same run's log.
    import itertools

    import botocore.waiter

    import rollway.aws.cloudformation as cloudformation
    from rollway.aws.cloudformation import StackDeleteTimeout

    monkeypatch.setattr(botocore.waiter, "time", SimpleNamespace(sleep=lambda _: None))
    # Each read of the adapter's clock 10 s after the one before: the wait ends after a few polls.
    ticks = itertools.count(0, 10)
    monkeypatch.setattr(cloudformation, "time", SimpleNamespace(monotonic=lambda: next(ticks), sleep=time.sleep))
    progress: list[str] = []
    with played_after_delete_stack(aws, lambda operation, after: False, [],
                                   lambda answered: {"StackStatus": "DELETE_IN_PROGRESS"}) as (stacks, judged, _), \
            pytest.raises(StackDeleteTimeout) as timed_out:
        stacks.delete(OLD, timeout_seconds=45, on_progress=progress.append, judged=judged)

    assert str(timed_out.value).startswith(f"stack {OLD!r} is still DELETE_IN_PROGRESS after 45 s; CloudFormation "
                                           "goes on deleting it."), str(timed_out.value)
    assert any(line.startswith(f"stack {OLD}: still DELETE_IN_PROGRESS, ") and line.endswith(" s left to wait")
               for line in progress), progress


@pytest.mark.parametrize("seconds, said", [(1800.0, "30 min"), (0.5, "under a second"), (90.0, "1 min 30 s")])
def test_the_wait_a_deletion_could_not_be_followed_to_the_end_of_is_said_as_every_wait_is(seconds, said):
    from rollway.aws.cloudformation import StackDeleteTimeout, StackDeleteUnfollowed

    assert f" after {said}; " in str(StackDeleteTimeout(OLD, "DELETE_IN_PROGRESS", seconds))
    unfollowed = StackDeleteUnfollowed(OLD, "DELETE_IN_PROGRESS", 0.4, "Throttling on DescribeStacks: Rate exceeded",
                                       seconds)
    assert (f"until the wait ended after {said}, the last with Throttling on DescribeStacks: Rate exceeded. It was "
            "last seen DELETE_IN_PROGRESS, under a second before the wait ended;") in str(unfollowed), str(unfollowed)


def test_a_failed_deletion_with_no_start_among_its_events_says_none_of_the_earlier_ones_as_its_progress(aws):
    # No deletion start among the events read: every event not said yet was said as the deletion's
    # progress, back to the stack's first page (its creation and every update after it), from
    # earlier operations that have nothing to do with this deletion.
    from rollway.aws.cloudformation import _deletion_start
    from tests.botocore_events import on_operation

    progress: list[str] = []
    stuck = {"StackStatus": "DELETE_FAILED", "StackStatusReason": STUCK}
    with played_after_delete_stack(aws, lambda operation, after: False, [], lambda answered: stuck) \
            as (stacks, judged, asked):
        client = aws.get_client("cloudformation")
        client.update_stack(StackName=OLD, TemplateBody=template("webordinary-older-queue"))
        judged = stacks.describe(OLD)

        def paged(parsed, **_):
            if "DeleteStack" not in asked:
                # A stack's events of years fill many pages: the newest page read before DeleteStack
                # holds its newest event only, as the first of a hundred would.
                parsed["StackEvents"], parsed["NextToken"] = parsed["StackEvents"][:1], "older"
            else:
                # And this deletion's start is not among the events read after it.
                parsed["StackEvents"] = [e for e in parsed["StackEvents"] if not _deletion_start(e)]

        with on_operation(client, "after-call", paged, operation="DescribeStackEvents"), \
                pytest.raises(StackDeleteFailed) as failed:
            stacks.delete(OLD, timeout_seconds=3, on_progress=progress.append, judged=judged)

    events = [line for line in progress if line.startswith(f"stack {OLD}: ") and "deletion requested" not in line]
    assert not [line for line in events if "CREATE_" in line or "UPDATE_" in line], progress
    # What came after DeleteStack is said (moto adds the stack's own DELETE_COMPLETE, besides the start hidden).
    assert events == [f"stack {OLD}: {OLD} (AWS::CloudFormation::Stack) DELETE_COMPLETE"], progress
    assert failed.value.reasons == (STUCK.strip(),) and failed.value.read_back is None, str(failed.value)


def test_a_failed_deletion_with_no_start_among_its_events_names_no_resource_an_earlier_attempt_failed():
    # An earlier deletion failed on a VPC, and this one's start is not among its events: the VPC was
    # named as what stopped this one, from the events behind those read before DeleteStack.
    client = stubbed_client()
    earlier = [event(4, OLD, "AWS::CloudFormation::Stack", "DELETE_FAILED", "The following resource(s) failed"),
               event(3, "Vpc", "AWS::EC2::VPC", "DELETE_FAILED", "The vpc has dependencies and cannot be deleted"),
               event(2, OLD, "AWS::CloudFormation::Stack", "DELETE_IN_PROGRESS", "User Initiated"), CREATED]
    now = event(10, OLD, "AWS::CloudFormation::Stack", "DELETE_FAILED", "Role is invalid or cannot be assumed")
    with Stubber(client) as stub:
        stub.add_response("describe_stacks", stack_answer("DELETE_FAILED"), {"StackName": OLD})
        # The newest page before DeleteStack: its newest event only, as the first of a hundred.
        stub.add_response("describe_stack_events", {"StackEvents": earlier[:1], "NextToken": "older"},
                          {"StackName": SID})
        stub.add_response("delete_stack", {}, {"StackName": SID})
        stub.add_response("describe_stacks", stack_answer("DELETE_FAILED"), {"StackName": SID})
        stub.add_response("describe_stack_events", {"StackEvents": [now, *earlier]}, {"StackName": SID})
        progress: list[str] = []
        with pytest.raises(StackDeleteFailed) as failed:
            CloudFormationStacks(client, sleep=lambda _: None).delete(OLD, timeout_seconds=60,
                                                                     on_progress=progress.append)

    assert failed.value.reasons == ("Role is invalid or cannot be assumed",), str(failed.value)
    assert failed.value.failed == () and "Vpc" not in str(failed.value), str(failed.value)
    said = [line for line in progress if "deletion requested" not in line]
    assert said == [f"stack {OLD}: {OLD} (AWS::CloudFormation::Stack) DELETE_FAILED: Role is invalid or cannot be "
                    "assumed"], progress


def test_a_failed_deletion_under_way_before_delete_stack_names_what_failed_before_it_was_sent():
    # A run stopped waiting for the deletion; the next read it DELETE_IN_PROGRESS and sent DeleteStack,
    # which joins the deletion under way. The bucket had failed already, among the events read before
    # DeleteStack: those were cut as earlier operations', and the failure named no resource to retain.
    failed, progress = deletion_failed(newest=BUCKET_NOT_EMPTY[1:], before="DELETE_IN_PROGRESS")

    assert failed.reasons == ("Logs (AWS::S3::Bucket): The bucket you tried to delete is not empty",)
    assert failed.failed == ("Logs",) and failed.read_back is None, str(failed)
    assert "--retain-resources Logs`" in str(failed), str(failed)
    # The events read before DeleteStack are not said again.
    said = [line for line in progress if "deletion requested" not in line]
    assert said == [f"stack {OLD}: {OLD} (AWS::CloudFormation::Stack) DELETE_FAILED: The following resource(s) "
                    "failed to delete"], progress


def test_an_exact_awslogs_group_keeps_the_log_group_of_that_name_not_a_table_of_it(aws, stacks):
    # A task definition's awslogs-group kept any resource whose physical id is that name: a table's
    # (or a role's) is its bare name as a log group's is, and the stack holding it was refused as
    # holding "the log group of task definition ...", which it does not.
    _, planned = planned_beside_a_log_group(aws, stacks, "webordinary-app", "webordinary-app",
                                            log_group="webordinary-app")

    reasons = {refusal.name: refusal.reason for refusal in planned.refusals}
    assert set(reasons) == {"webordinary-logs-stack"}, reasons
    assert reasons["webordinary-logs-stack"] == (
        f"it holds webordinary-app (the log group of task definition {aws.targets.task_family}:2, the stable service "
        "deploys it): deleting the stack deletes it, and production runs on it"), reasons
    assert planned.delete_stacks == (OLD,)


@pytest.mark.parametrize("group_is", ["table", "role"])
def test_a_log_group_named_as_a_table_or_role_in_use_is_not_kept_for_it(aws, stacks, group_is):
    # A log group's physical id is its bare name, as a table's or a role's is: one that only shared
    # its name with the flags table, or with the task role of a revision in use, was kept as that
    # table or role ("production runs on it"), where nothing writes to it.
    role = "webordinary-app-task-role"
    group = aws.targets.flags_table if group_is == "table" else role
    _, planned = planned_beside_a_log_group(aws, stacks, "webordinary-old-table", group,
                                            task_role=f"arn:aws:iam::123456789012:role/{role}",
                                            log_group="/ecs/webordinary-app")

    assert not planned.refusals, [str(refusal) for refusal in planned.refusals]
    assert planned.delete_stacks == (OLD, "webordinary-logs-stack")


def test_a_log_group_named_as_a_table_is_kept_for_the_template_it_fits_and_says_so(aws, stacks):
    # Fitting a FireLens template in use, it may be a group production writes to: kept for that,
    # and said so, not as the table whose name it shares.
    table = aws.targets.flags_table
    _, planned = planned_beside_a_log_group(aws, stacks, "webordinary-old-table", table,
                                            log_group_templates=("webordinary-$(ecs_task_id)",))

    reasons = {refusal.name: refusal.reason for refusal in planned.refusals}
    assert set(reasons) == {"webordinary-logs-stack"}, reasons
    assert reasons["webordinary-logs-stack"] == (
        f"it holds {table} (perhaps: the log group template 'webordinary-$(ecs_task_id)' FireLens sends the logs of "
        f"task definition {aws.targets.task_family}:2 to (the stable service deploys it), which cleanup cannot "
        "resolve): deleting the stack deletes it, and production may write to it"), reasons
    assert planned.delete_stacks == (OLD,)


TASK_ROLE = "webordinary-app-task-role"


def planned_with_task_role_in_use(aws, stacks, resources: dict[str, Any]) -> tuple[Any, Any]:
    """The stack ``OLD`` made of ``resources`` as described, and the plan deleting it while a task
    definition in use runs with the task role ``TASK_ROLE``."""
    from rollway.cleanup import CleanupSpec, ImageUse, plan_cleanup

    aws.get_client("cloudformation").create_stack(StackName=OLD, TemplateBody=json.dumps({"Resources": resources}))
    described = stacks.describe(OLD)
    use = ImageUse(task_definition=f"arn:aws:ecs:us-west-2:123456789012:task-definition/{aws.targets.task_family}:2",
                   why="the stable service deploys it", image="webordinary:2.0.0",
                   task_role=f"arn:aws:iam::123456789012:role/{TASK_ROLE}", log_group="/ecs/webordinary-app")
    return described, plan_cleanup(CleanupSpec(old_stacks=(OLD,)), aws.targets, stacks={OLD: described},
                                   in_use=[use], images=())


@pytest.mark.parametrize("log_group_retained", [False, True])
def test_a_role_in_use_is_kept_beside_a_log_group_of_its_name_in_the_same_stack(aws, stacks, log_group_retained):
    # A log group and a role share one physical id, their bare name, and a stack holding both listed
    # the id twice: each was judged as a log group, and the stack holding the task role of a revision
    # in use was planned for deletion (no role left to pull its image with). With the log group's
    # DeletionPolicy keeping it (the role's not), each listing of the id was read as kept.
    logs = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": TASK_ROLE}}
    described, planned = planned_with_task_role_in_use(aws, stacks, {
        "Logs": {**logs, "DeletionPolicy": "Retain"} if log_group_retained else logs,
        "Role": {"Type": "AWS::IAM::Role",
                 "Properties": {"RoleName": TASK_ROLE, "AssumeRolePolicyDocument": ROLE_TRUST}},
    })

    assert described.resources == (TASK_ROLE, TASK_ROLE)
    assert described.holdings == (Holding(type="AWS::Logs::LogGroup", retained=log_group_retained),
                                  Holding(type="AWS::IAM::Role"))
    assert [(refusal.name, refusal.reason) for refusal in planned.refusals] == [(OLD, (
        f"it holds {TASK_ROLE} (the task role of task definition {aws.targets.task_family}:2, the stable service "
        "deploys it): deleting the stack deletes it, and production runs on it"))]
    assert planned.delete_stacks == ()


@pytest.mark.parametrize("held_is", ["role", "table"])
def test_a_role_named_as_a_table_in_use_is_not_kept_as_the_table_nor_a_table_as_a_role(aws, stacks, held_is):
    # A role's physical id is its bare name, as a table's is: a role that only shared its name with
    # the flags table was kept as that table ("production runs on it"), and a table named as the task
    # role of a revision in use as that role, where production uses neither.
    if held_is == "role":
        name = aws.targets.flags_table
        resource = {"Type": "AWS::IAM::Role", "Properties": {"RoleName": name, "AssumeRolePolicyDocument": ROLE_TRUST}}
    else:
        name, resource = TASK_ROLE, table_resource(TASK_ROLE)
    described, planned = planned_with_task_role_in_use(aws, stacks, {"Held": resource})

    assert described.resources == (name,)
    assert not planned.refusals, [str(refusal) for refusal in planned.refusals]
    assert planned.delete_stacks == (OLD,)


def test_a_role_in_use_beside_a_nested_log_group_of_its_name_is_said_to_be_in_the_stack_itself(aws, stacks):
    # A role and a log group share one physical id, their bare name: with the log group in a nested
    # stack, the root's own role was said to be in that nested stack, which a person then went to
    # look for there (and, after it had been emptied, found the root still refused).
    from rollway.cleanup import CleanupSpec, ImageUse, plan_cleanup

    s3 = aws.get_client("s3")
    s3.create_bucket(Bucket="old-templates", CreateBucketConfiguration={"LocationConstraint": aws.targets.region})
    s3.put_object(Bucket="old-templates", Key="logs.json", Body=json.dumps({"Resources": {
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": TASK_ROLE}}}}))
    aws.get_client("cloudformation").create_stack(StackName=OLD, TemplateBody=json.dumps({"Resources": {
        "Role": {"Type": "AWS::IAM::Role", "Properties": {"RoleName": TASK_ROLE, "AssumeRolePolicyDocument": ROLE_TRUST}},
        "Inner": {"Type": "AWS::CloudFormation::Stack",
                  "Properties": {"TemplateURL": "https://old-templates.s3.amazonaws.com/logs.json"}}}}))
    described = stacks.describe(OLD)
    use = ImageUse(task_definition=f"arn:aws:ecs:us-west-2:123456789012:task-definition/{aws.targets.task_family}:2",
                   why="the stable service deploys it", image="webordinary:2.0.0",
                   task_role=f"arn:aws:iam::123456789012:role/{TASK_ROLE}")
    planned = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), aws.targets, stacks={OLD: described}, in_use=[use],
                           images=())

    assert [(refusal.name, refusal.reason) for refusal in planned.refusals] == [(OLD, (
        f"it holds {TASK_ROLE} (the task role of task definition {aws.targets.task_family}:2, the stable service "
        "deploys it): deleting the stack deletes it, and production runs on it"))]


def test_a_table_named_like_the_cluster_is_not_kept_as_the_cluster(aws, stacks):
    # A table's physical id is its bare name, as a cluster's is: the old stack's table named like the
    # cluster was kept "as the ECS cluster", and the stack stayed, costing money, holding nothing in use.
    described, planned = planned_with_task_role_in_use(aws, stacks, {"Held": table_resource(aws.targets.cluster)})

    assert described.resources == (aws.targets.cluster,)
    assert not planned.refusals, [str(refusal) for refusal in planned.refusals]
    assert planned.delete_stacks == (OLD,)
