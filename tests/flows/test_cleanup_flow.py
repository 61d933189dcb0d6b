"""The cleanup flow on the Prefect harness and the embedded AWS, with a real git repository:
archive first, delete old images and an old stack, keep what production runs on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from prefect import flow as prefect_flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from flows.cleanup import ARTIFACT_KEY, cleanup
import rollway.deadline
from rollway.cleanup import NOT_FOUND, CleanupIncomplete, CleanupRefused
from rollway.deadline import READ_SECONDS
from rollway.ledger import Transition
from rollway.targets import Targets
from tests.flows.moto_env import put_image, queue_exists, saved_blocks
from tests.toolchain.git_repo import git, git_repo, slow_remote

OLD_STACK, OLD_QUEUE, LIVE_QUEUE = "webordinary-old-stack", "webordinary-old-queue", "webordinary-live-queue"
TAG, MESSAGE = "pre-sqs-architecture", "Archive before SQS migration"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A checkout with one commit and a bare `origin`."""
    return git_repo(tmp_path, [("old architecture", {"handler.ts": "// the old architecture\n"})])


@pytest.fixture
def account(aws):
    """The provisioned account with an old stack, a live one, and images old and in use."""
    cloudformation = aws.get_client("cloudformation")
    for stack, queue in ((OLD_STACK, OLD_QUEUE), (aws.targets.stacks[4], LIVE_QUEUE)):
        body = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}}}
        cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(body))
    put_image(aws, "1.0.0", "1")  # what the stable and canary services run
    put_image(aws, "old-version", "2")
    put_image(aws, "0.9.0", "3")
    return aws


def digests(aws) -> dict[str, str]:
    """Each tag in the repository -> the digest of the image it tags."""
    details = aws.get_client("ecr").describe_images(repositoryName=aws.targets.ecr_repository)["imageDetails"]
    return {t: d["imageDigest"] for d in details for t in d.get("imageTags", [])}


def tags(aws) -> set[str]:
    return set(digests(aws))


def stack_status(aws, name: str) -> str | None:
    try:
        return aws.get_client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    except ClientError:
        return None


def refused_as_the_cleanup_policy_would(aws, service: str, operation: str, code: str, asked: list[str]):
    """A botocore handler refusing ``operation`` as AWS would under the documented infrastructure
    policy (naming the resource it refused, which it appends to ``asked``)."""
    from tests.flows.iam import denied, iam_requests

    action = f"{service}:{operation}"  # the IAM prefix is the client's name for both services used here

    def as_aws_refuses(params, **_):
        if refused := denied("iam-policy-infrastructure.json",
                             iam_requests(service, operation, params, region=aws.targets.region)):
            asked.append(refused[0].resource)
            raise ClientError({"Error": {"Code": code, "Message": (
                "User: arn:aws:sts::123456789012:assumed-role/rollway-worker/i-0abc is not authorized to perform: "
                f"{action} on resource: {refused[0].resource} because no identity-based policy allows the {action} "
                "action")}}, operation)

    return as_aws_refuses


def read_client(aws, service: str):
    """The client of ``service`` cleanup's reads are made on (bounded at the spec's default)."""
    return aws.get_client.reading(READ_SECONDS)(service)


def untouched(aws, repo: Path) -> None:
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"}
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, OLD_QUEUE)
    assert git(repo, "tag", "-l") == ""


def summary(state) -> str:
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    (artifact,) = [a for a in found if a.key == ARTIFACT_KEY]
    return artifact.data


def run(aws, repo: Path, **parameters):
    blocks = saved_blocks(aws, "cleanup")
    defaults = dict(archive_tag=TAG, archive_message=MESSAGE, repo_dir=str(repo), stack_timeout_seconds=30,
                    targets_block=blocks, aws_credentials_block=blocks)
    return cleanup(**{**defaults, **parameters}, return_state=True)


def refusal_of(state) -> CleanupRefused:
    """The CleanupRefused a failed cleanup run ended with (it refused before deleting anything)."""
    assert state.is_failed()
    with pytest.raises(CleanupRefused) as refused:
        state.result()
    return refused.value


def test_a_run_archives_then_deletes_old_images_and_the_old_stack_and_keeps_production(account, repo, caplog):
    aws = account
    before = digests(aws)
    (old_queue_url,) = [r["PhysicalResourceId"] for r in aws.get_client("cloudformation").list_stack_resources(
        StackName=OLD_STACK)["StackResourceSummaries"]]
    # Deleted by hand before the run: CloudFormation lists it as DELETE_COMPLETE.
    aws.get_client("cloudformation").create_stack(StackName="deleted-long-ago", TemplateBody=json.dumps(
        {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "older-queue"}}}}))
    aws.get_client("cloudformation").delete_stack(StackName="deleted-long-ago")
    state = run(aws, repo, old_stacks=[OLD_STACK, "deleted-long-ago"],
                old_image_tags=["old-version", "0.9.0", "never-pushed"])
    assert state.is_completed(), state.message
    result = state.result()
    # What it is about to write is said before the first write, as a dry run says it: a run started
    # from the UI (dry_run off) logged each deletion only once it was done.
    said = [r.getMessage() for r in caplog.records]
    first_write = next(i for i, m in enumerate(said) if m.startswith("archived: "))
    planned = [m for m in said[:first_write] if m.startswith("the plan: ")]
    assert planned == [f"the plan: archive tag {TAG} (pushed to origin); delete image tags ['old-version', '0.9.0'] "
                       f"and stacks ['{OLD_STACK}'], each read again right before it goes; stacks deleted before: "
                       "['deleted-long-ago']"], said[:first_write]

    head = git(repo, "rev-parse", "HEAD")
    assert git(repo.parent / "origin.git", "rev-parse", f"refs/tags/{TAG}^{{commit}}") == head, "archived and pushed"
    assert tags(aws) == {"1.0.0"}, "the image production runs stays"
    assert stack_status(aws, OLD_STACK) is None and not queue_exists(aws, OLD_QUEUE)
    assert stack_status(aws, aws.targets.stacks[4]) == "CREATE_COMPLETE" and queue_exists(aws, LIVE_QUEUE)
    assert result.deleted_tags == ("old-version", "0.9.0") and result.gone_tags == ("never-pushed",)
    assert result.deleted_stacks == (OLD_STACK,) and result.gone_stacks == ("deleted-long-ago",)
    assert result.archived == f"tag `{TAG}` -> {head}: created" and "pushed" in result.pushed
    text = summary(state)
    assert text.startswith("# Cleanup done")
    for line in (f"- `{OLD_STACK}`", "- `old-version`", "- image tag `never-pushed`",
                 f"- tag `{TAG}` -> {head}: created"):
        assert line in text
    # A tag never pushed (a misspelt one, say) is not said to have been deleted before; a stack
    # CloudFormation lists as deleted is.
    found = text[text.index("## Not found: deleted before, or never there (check the spelling"):]
    assert "- image tag `never-pushed`" in found and "Already gone" not in text
    assert "## Already deleted: stacks CloudFormation lists as DELETE_COMPLETE (by an earlier run, or by hand)\n\n" \
           "- `deleted-long-ago`\n" in text, text
    # A record of what went: the image each tag named, and what the stack held.
    assert f"- `old-version` (image {before['old-version']}, deleted with it: its last tag)\n" in text
    assert f"- `{OLD_STACK}`, with the 1 resource(s) it holds:\n  - `{old_queue_url}`\n" in text

    # Re-running is safe: everything is reported as there already or gone.
    again = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"]).result()
    assert again.archived == f"tag `{TAG}` -> {head}: existed already" and "there already" in again.pushed
    assert (again.deleted_tags, again.gone_tags, again.deleted_stacks, again.gone_stacks) == \
        ((), ("old-version",), (), (OLD_STACK,))


def test_a_misspelt_old_stack_fails_the_run_before_anything_is_written_naming_the_stack_meant(account, repo, caplog):
    """A name no stack had was "Not found: deleted before, or never there" in a run that ended
    Completed, the old stack still there under its real name, costing money. CloudFormation lists
    a deleted stack for 90 days: a name it has no record of is a misspelling, not a re-run."""
    aws = account
    state = run(aws, repo, old_stacks=["webordinary-old-stak"], old_image_tags=["old-version"])

    (refusal,) = refusal_of(state).refusals
    assert (refusal.kind, refusal.name) == ("stack", "webordinary-old-stak")
    assert refusal.reason.startswith("CloudFormation has no stack of that name in us-west-2, live or deleted in the "
                                     f"last 90 days (it lists deleted stacks that long): check its spelling; is it the "
                                     f"live stack {OLD_STACK}?"), refusal.reason
    untouched(aws, repo)
    assert "stack webordinary-old-stak: no stack of that name, live or deleted in the last 90 days (live stacks of " \
           f"close names: {OLD_STACK})" in caplog.text
    assert summary(state).startswith("# Cleanup refused: nothing was deleted")


def test_a_plan_naming_an_image_in_use_fails_before_anything_is_written(account, repo):
    # (``latest`` and a live stack are refused before any read: see below.)
    aws = account
    state = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version", "1.0.0"])

    refused = refusal_of(state)
    assert {(r.kind, r.name) for r in refused.refusals} == {("image tag", "1.0.0")}
    assert "the stable service deploys it" in str(refused)
    untouched(aws, repo)  # not even the archive tag: the plan is refused as a whole
    text = summary(state)
    assert text.startswith("# Cleanup refused: nothing was deleted") and "image tag `1.0.0`" in text
    # What production runs is listed in full in the artifact (the log names the first few).
    in_use = text[text.index("## In use: "):]
    assert "task definition webordinary-edit-task:1 (the stable service deploys it" in in_use
    assert in_use.rstrip().endswith("/webordinary/edit-container:1.0.0")


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_worker_where_git_cannot_name_the_tagger_is_refused_before_anything_even_in_a_dry_run(
        account, repo, tmp_path, monkeypatch, dry_run):
    """A fresh worker (a container, say) with no git identity: `git tag -a` fails. The run used to
    stop only at the archive step, and a dry run said all was well."""
    aws = account
    git(repo, "config", "--unset", "user.name")
    git(repo, "config", "--unset", "user.email")
    monkeypatch.setenv("HOME", str(tmp_path / "empty-home"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "EMAIL"):
        monkeypatch.delenv(name, raising=False)
    state = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"], dry_run=dry_run)
    refused = refusal_of(state)
    assert [(r.kind, r.name) for r in refused.refusals] == [("archive tag", TAG)]
    assert "tagger" in str(refused) and "user.email" in str(refused)
    untouched(aws, repo)


def test_uncommitted_changes_in_the_checkout_refuse_the_archive_unless_allowed_and_then_are_named(account, repo):
    """The archive tag goes on HEAD: edits never committed were left out of it without a word, and
    the old stack and images deleted right after, so the only copy of them was the worker's disk."""
    aws = account
    (repo / "handler.ts").write_text("// the old architecture, patched in production\n")
    (repo / "hotfix.ts").write_text("// never committed\n")

    state = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"])

    refused = refusal_of(state)
    assert [(r.kind, r.name) for r in refused.refusals] == [("archive tag", TAG)]
    message = str(refused)
    assert "2 uncommitted change(s) (M handler.ts; ?? hotfix.ts)" in message, message
    assert "commit them first" in message and "allow_uncommitted" in message
    untouched(aws, repo)

    allowed = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"], allow_uncommitted=True)

    assert allowed.is_completed(), allowed.message
    head = git(repo, "rev-parse", "HEAD")
    assert git(repo, "rev-parse", f"refs/tags/{TAG}^{{commit}}") == head
    said = allowed.result().archived
    assert said.startswith(f"tag `{TAG}` -> {head}: created; NOT archived: 2 uncommitted change(s)"), said
    assert "M handler.ts; ?? hotfix.ts" in said and "NOT archived: 2 uncommitted" in summary(allowed)


def test_a_dry_run_reports_what_it_would_do_and_changes_nothing(account, repo):
    aws = account
    state = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version", "never-pushed"], dry_run=True)
    result = state.result()
    assert result.dry_run and result.deleted_tags == ("old-version",) and result.deleted_stacks == (OLD_STACK,)
    assert result.gone_tags == ("never-pushed",) and "would be created" in result.archived
    untouched(aws, repo)
    assert summary(state).startswith("# Cleanup dry run: nothing was deleted")


def test_what_a_stacks_deletion_policy_keeps_is_said_to_stay_in_the_dry_run_and_after_the_deletion(aws, repo):
    # CDK retains a table, a bucket or a log group by default: listed among what the stack's
    # deletion removed, it was taken for gone (its data and its bill stay).
    body = {"Resources": {
        "Archive": {"Type": "AWS::SQS::Queue", "DeletionPolicy": "Retain", "Properties": {"QueueName": "old-archive"}},
        "Work": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "old-work"}}}}
    aws.get_client("cloudformation").create_stack(StackName=OLD_STACK, TemplateBody=json.dumps(body))
    urls = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in aws.get_client("cloudformation")
            .list_stack_resources(StackName=OLD_STACK)["StackResourceSummaries"]}
    expected = (f"- `{OLD_STACK}`, with the 2 resource(s) it holds (1 kept by their DeletionPolicy: they stay):",
                f"  - `{urls['Archive']}` (kept: its DeletionPolicy retains it)\n", f"  - `{urls['Work']}`\n")

    dry = run(aws, repo, archive_tag=None, archive_message="", old_stacks=[OLD_STACK], dry_run=True)
    assert dry.result().stack_retained == {OLD_STACK: (urls["Archive"],)}
    assert all(line in summary(dry) for line in expected), summary(dry)

    state = run(aws, repo, archive_tag=None, archive_message="", old_stacks=[OLD_STACK])
    assert state.is_completed(), state.message
    assert stack_status(aws, OLD_STACK) is None
    assert queue_exists(aws, "old-archive") and not queue_exists(aws, "old-work")
    text = summary(state)
    assert text.startswith("# Cleanup done") and all(line in text for line in expected), text


def test_a_failed_push_stops_before_any_delete_and_says_what_was_done(account, repo):
    aws = account
    hook = repo.parent / "origin.git" / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'tags are frozen today' >&2\nexit 1\n")
    hook.chmod(0o755)
    state = run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"])
    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    message = str(stopped.value)
    assert f"push the archive tag {TAG} to origin" in message and "tags are frozen today" in message
    assert f"Not done: push tag {TAG}; image tag old-version; stack {OLD_STACK}" in message
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"} and stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"
    assert "## Not done" in summary(state)

    hook.unlink()  # the remote takes tags again: the next run carries on
    assert run(aws, repo, old_stacks=[OLD_STACK], old_image_tags=["old-version"]).result().deleted_stacks == (OLD_STACK,)


def test_a_push_the_remote_is_slow_to_take_is_said_in_the_run_log_while_it_waits(
        account, repo, tmp_path, caplog, monkeypatch):
    # git push prints nothing while the remote has not answered: with nothing in the run's log for
    # up to two minutes, a person could not tell a slow remote from a hung run. Said every 10 s;
    # here every 2 s, the remote silent for 2.5 s.
    monkeypatch.setattr(rollway.deadline, "WAITING_SAID_EVERY_SECONDS", 2.0)
    slow_remote(repo, tmp_path, 2.5, sides=("receivepack",))
    with caplog.at_level("INFO"):
        state = run(account, repo, old_image_tags=["old-version"])
    assert state.is_completed(), state.message
    assert git(repo.parent / "origin.git", "tag", "-l") == TAG
    # The push's own lines: on a loaded machine an AWS read past the 2 s says it waits too, in its own words.
    waits = [r.getMessage() for r in caplog.records if r.getMessage().startswith("git: still waiting")]
    # Said at 2 s, and again every 2 s while a loaded machine keeps git past 4 s: the line's seconds
    # are the machine's, what it says is not.
    said = re.escape(f"git: still waiting for remote 'origin' to take tag {TAG!r} (git push) after ") + \
        r"\d+ s of 120 s"
    assert waits and all(re.fullmatch(said, w) for w in waits), waits


def test_bad_parameters_fail_before_any_aws_call(account, repo, every_call):
    # The flow makes clients of its own from the saved blocks: watch every client, not the test's.
    calls = [every_call(s) for s in ("ecs", "ecr", "cloudformation")]
    state = run(account, repo, archive_tag="pre..sqs", old_stacks=[OLD_STACK])
    assert state.is_failed() and "contains '..'" in state.message + str(state.result(raise_on_failure=False))
    assert calls == [[], [], []]
    untouched(account, repo)


def test_an_old_stack_holding_a_task_definition_in_use_is_refused_even_without_image_tags(account, repo):
    # The old stack registered a revision of the live family (the stable service's, or the previous
    # one a rollback restores): deleting the stack deregisters it, and ECS then refuses to point a
    # service at it. A stacks-only run must read what production runs as well, not only an image run.
    aws = account
    ecs = aws.get_client("ecs")
    image = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"][
        "containerDefinitions"][0]["image"]
    body = {"Resources": {"Task": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
        "Family": aws.targets.task_family, "Memory": "512",
        "ContainerDefinitions": [{"Name": aws.targets.container_name, "Image": image}]}}}}
    old = "webordinary-older-stack"
    aws.get_client("cloudformation").create_stack(StackName=old, TemplateBody=json.dumps(body))
    (held,) = [r["PhysicalResourceId"] for r in
               aws.get_client("cloudformation").list_stack_resources(StackName=old)["StackResourceSummaries"]]
    assert ecs.describe_task_definition(taskDefinition=held)["taskDefinition"]["status"] == "ACTIVE"

    state = run(aws, repo, old_stacks=[old], archive_tag=None, archive_message="", repo_dir=None)

    refused = refusal_of(state)
    (refusal,) = refused.refusals
    assert (refusal.kind, refusal.name) == ("stack", old)
    assert f"task definition {held.rsplit('/', 1)[-1]} (an ACTIVE revision of {aws.targets.task_family})" \
        in refusal.reason, refusal.reason
    assert stack_status(aws, old) == "CREATE_COMPLETE"


def kept_until_rolled_back(aws, repo: Path, ledger, started: float, tag: str, because: str) -> None:
    """Cleanup of image ``tag`` is refused ``because`` while the rollout started at ``started`` is
    open, then deletes it once the rollout is recorded as rolled back."""
    from rollway.phases import RolloutPhase

    state = run(aws, repo, old_image_tags=[tag], archive_tag=None, archive_message="", repo_dir=None)
    refused = refusal_of(state)
    (refusal,) = refused.refusals
    assert (refusal.kind, refusal.name) == ("image tag", tag)
    assert because in refusal.reason, refusal.reason
    assert tag in tags(aws)

    # Once that rollout is rolled back, nothing restores or deploys it any more: the tag may go.
    later = started + 60
    ledger.record(aws.targets.canary_service, owner=None, now=later, phase=RolloutPhase.ROLLED_BACK,
                  transition=Transition(at=later, kind="rollback", actor="oncall"))
    done = run(aws, repo, old_image_tags=[tag], archive_tag=None, archive_message="", repo_dir=None)
    assert done.is_completed(), done.message
    assert tag not in tags(aws)


def test_the_task_definition_a_rollback_restores_counts_as_in_use_even_of_another_family(account, repo):
    """The canary ran a revision of the old architecture's family before the rollout (the new one
    registered a family of its own): no service, ACTIVE revision of the targets' family or running
    task names it, so its image was deleted, and the rollback still to come would point the canary
    at an image that cannot be pulled."""
    from rollway.aws.ledger import DynamoLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.model import Weights
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec

    aws = account
    ecs = aws.get_client("ecs")
    image = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"][
        "containerDefinitions"][0]["image"]
    legacy = ecs.register_task_definition(
        family="webordinary-legacy-edit", requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", containerDefinitions=[{"name": aws.targets.container_name, "essential": True,
                                             "image": image.rsplit(":", 1)[0] + ":old-version"}],
    )["taskDefinition"]["taskDefinitionArn"]
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    now = 1_000_000.0
    spec = RolloutSpec(image="webordinary/edit-container:2.0.0")
    rollout = RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(now), image=spec.image,
                            spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                            weights=Weights.canary_at(5), previous_task_definition=legacy, stable_desired=2)
    ledger.create(rollout, owner="process/run", now=now, lease_seconds=0)

    kept_until_rolled_back(aws, repo, ledger, now, "old-version",
                           f"a rollback of rollout {rollout.rollout_id} (progressing) restores it")


def test_the_image_an_open_rollout_has_yet_to_deploy_counts_as_in_use(account, repo):
    """A rollout whose run stopped after recording its start and before pointing the canary at
    its image (still pending): no service, revision or task names that image yet, so its last
    tag was deleted, image and all, and the rollout resumed onto an image that cannot be pulled."""
    from rollway.aws.ledger import DynamoLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec

    aws = account
    repository = aws.get_client("ecs").describe_task_definition(taskDefinition=aws.targets.task_family)[
        "taskDefinition"]["containerDefinitions"][0]["image"].rsplit(":", 1)[0]
    digest = put_image(aws, "2.0.0", "4")
    spec = RolloutSpec(image=f"{repository}:2.0.0")
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    now = 1_000_000.0
    rollout = RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(now), image=spec.image,
                            spec_json=spec.model_dump_json(), phase=RolloutPhase.PENDING,
                            previous_task_definition=aws.get_client("ecs").describe_services(
                                cluster=aws.targets.cluster, services=[aws.targets.canary_service])[
                                "services"][0]["taskDefinition"],
                            stable_desired=2, pinned_image=f"{repository}@{digest}")
    ledger.create(rollout, owner="process/run", now=now, lease_seconds=0)

    kept_until_rolled_back(aws, repo, ledger, now, "2.0.0", f"rollout {rollout.rollout_id} (pending) deploys it")


def test_a_tag_deletion_failing_after_its_first_hundred_says_which_tags_were_deleted(account, repo):
    # BatchDeleteImage takes 100 tags a call: a run deleting 150 old tags whose second call is
    # refused has deleted the first 100. Its record must say so, not list all 150 as not done
    # (nor, retried, report the 100 it deleted itself as deleted by someone else).
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    old = [f"build-{n:03d}" for n in range(150)]
    (digest,) = {put_image(aws, tag, "5") for tag in old}  # one image under 150 tags
    calls: list[int] = []

    def refuse_after_the_first(params, **_):
        calls.append(len(params["imageIds"]))
        if len(calls) > 1:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not today"}},
                              "BatchDeleteImage")

    @flow(name="cleanup-refused-midway")
    def cleanup_refused_midway():
        return run_cleanup(CleanupSpec(old_image_tags=tuple(old)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("ecr"), "before-parameter-build", refuse_after_the_first, operation="BatchDeleteImage"):
        state = cleanup_refused_midway(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    assert calls[0] == 100 and tags(aws) == {"1.0.0", "old-version", "0.9.0", *old[100:]}
    done, not_done = stopped.value.done, stopped.value.not_done
    # The image stays: the 50 tags ECR refused to delete still name it.
    assert done == tuple(f"deleted image tag {t} (image {digest}, which stays: still tagged `build-100`, `build-101`, "
                         f"`build-102` and 47 more) from {aws.targets.ecr_repository}" for t in old[:100])
    assert not_done == tuple(f"image tag {t}" for t in old[100:])
    # ECR's one refusal is said once, naming the 50 tags it stopped (not 50 copies of it).
    assert str(stopped.value).count("AccessDeniedException") == 1
    assert all(t in str(stopped.value) for t in old[100:])
    # The first few of what was done and not: 150 tags made an error of 20,000 characters.
    message = str(stopped.value)
    assert "delete 150 image tag(s) (build-000, build-001, build-002 and 147 more)" in message
    assert "; and 97 more (every one in the run's artifact). Not done: image tag build-100;" in message
    assert "; and 47 more (every one in the run's artifact). Run cleanup again" in message
    assert len(message) < 2500, len(message)
    text = summary(state)
    assert "- `build-000`" in text[text.index("## Deleted: image tags"):text.index("## Deleted: stacks")]
    assert "build-000" not in text[text.index("## Not found"):]

@pytest.mark.parametrize("lost", [True, False])
def test_tags_a_lost_answer_deleted_are_said_deleted_by_this_run_when_the_retry_finds_them_gone(
        account, monkeypatch, caplog, lost):
    # ECR deleted the tags, and its answer was lost on the way (a read timeout): the task is
    # retried, and ECR answers the retry "not found" for them. They were reported "not found:
    # deleted before, or never there", as if the run had found them gone; it deleted them. A call
    # never sent (no connection) deleted nothing: tags gone by the retry went some other way.
    from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
    from prefect import flow

    import tasks.cleanup
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec, summary_markdown
    from tests.botocore_events import on_operation

    aws = account
    before = digests(aws)
    failed: list[str] = []
    endpoint = "https://api.ecr.us-west-2.amazonaws.com/"

    def lose_the_first_answer(**_):
        if not failed:
            failed.append("BatchDeleteImage")
            raise ReadTimeoutError(endpoint_url=endpoint)

    def send_nothing_the_first_time(**_):
        if not failed:
            failed.append("BatchDeleteImage")
            # Deleted by someone else meanwhile (by hand, a lifecycle rule), not by this run.
            aws.get_client("ecr").batch_delete_image(repositoryName=aws.targets.ecr_repository, imageIds=[
                {"imageTag": "old-version"}, {"imageTag": "0.9.0"}])
            raise EndpointConnectionError(endpoint_url=endpoint)

    # No real wait between the task's tries.
    monkeypatch.setattr(tasks.cleanup, "delete_tags", tasks.cleanup.delete_tags.with_options(retry_delay_seconds=0))

    @flow(name="cleanup-answer-lost")
    def cleanup_answer_lost():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version", "0.9.0")), aws.targets, aws.get_client)

    ecr = aws.get_client("ecr")
    with on_operation(ecr, "after-call", lose_the_first_answer, operation="BatchDeleteImage") if lost else \
            on_operation(ecr, "before-call", send_nothing_the_first_time, operation="BatchDeleteImage"):
        result = cleanup_answer_lost()

    assert failed and tags(aws) == {"1.0.0"}
    text = summary_markdown(result, aws.targets.ecr_repository)
    said = [r.getMessage() for r in caplog.records if "most likely" in r.getMessage()]
    if not lost:
        assert result.deleted_tags == () and result.gone_tags == ("old-version", "0.9.0") and not said
        return
    assert result.deleted_tags == ("old-version", "0.9.0") and result.gone_tags == ()
    deleted = text[text.index("## Deleted: image tags"):text.index("## Deleted: stacks")]
    assert f"`old-version` (image {before['old-version']}" in deleted and "`0.9.0`" in deleted
    assert "old-version" not in text[text.index("## Not found"):]
    assert said and "old-version" in said[0] and "0.9.0" in said[0] and "not before the run" in said[0], said


def test_what_a_run_whose_every_answer_was_lost_kept_is_not_left_to_later_runs(account, monkeypatch):
    # The tags of a BatchDeleteImage call whose answer was lost are kept for the task's retries.
    # A task whose every try lost its answer left them in the worker's memory for good: one entry
    # per such run, for the worker's life, never read again.
    from botocore.exceptions import ReadTimeoutError
    from prefect import flow

    import tasks.cleanup
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupIncomplete, CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    endpoint = "https://api.ecr.us-west-2.amazonaws.com/"

    def lose_every_answer(**_):
        raise ReadTimeoutError(endpoint_url=endpoint)

    monkeypatch.setattr(tasks.cleanup, "delete_tags", tasks.cleanup.delete_tags.with_options(retry_delay_seconds=0))

    @flow(name="cleanup-every-answer-lost")
    def cleanup_every_answer_lost():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version",)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("ecr"), "after-call", lose_every_answer, operation="BatchDeleteImage"):
        with pytest.raises(CleanupIncomplete, match="ReadTimeoutError") as stopped:
            cleanup_every_answer_lost()

    assert "old-version" not in tags(aws), "the first try deleted it"
    # Listed as not done, it was gone: the person reading the failure is told it may be.
    assert ("ECR may have deleted the image tags of the call whose answer was lost (old-version), though listed as "
            "not done: a new run finds them gone and lists them as not found") in str(stopped.value), stopped.value
    assert not getattr(tasks.cleanup, "_unanswered", {}), "nothing of the run is kept once it has ended"


def lost_then_read_fails(aws, monkeypatch, failure: BaseException, raised: type[BaseException]):
    """A cleanup of old-version whose first BatchDeleteImage loses its answer (ECR deleted the tag)
    and whose read of what production runs raises ``failure`` from the task's second try on: the
    ``raised`` it ends with, and the BatchDeleteImage calls made."""
    from botocore.exceptions import ReadTimeoutError
    from prefect import flow

    import flows.cleanup
    import tasks.cleanup
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    sent: list[str] = []

    def lose_the_first_answer(**_):
        sent.append("BatchDeleteImage")
        if len(sent) == 1:
            raise ReadTimeoutError(endpoint_url="https://api.ecr.us-west-2.amazonaws.com/")

    reads: list[object] = []
    real = flows.cleanup._Reads.in_use

    def fails_after_the_first_try(self, nothing=tasks.cleanup.NOTHING_DELETED):
        reads.append(nothing)  # the plan's, the first try's, then each later try's
        if len(reads) > 2:
            raise failure
        return real(self, nothing)

    monkeypatch.setattr(flows.cleanup._Reads, "in_use", fails_after_the_first_try)
    monkeypatch.setattr(tasks.cleanup, "delete_tags", tasks.cleanup.delete_tags.with_options(retry_delay_seconds=0))

    @flow(name="cleanup-earlier-answer-lost")
    def cleanup_earlier_answer_lost():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version",)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("ecr"), "after-call", lose_the_first_answer, operation="BatchDeleteImage"):
        with pytest.raises(raised) as stopped:
            cleanup_earlier_answer_lost()
    assert not getattr(tasks.cleanup, "_unanswered", {}), "nothing of the run is kept once it has ended"
    return stopped.value, sent


def test_a_lost_answer_of_an_earlier_try_is_said_when_the_last_try_stops_before_sending(account, monkeypatch):
    # The first try's BatchDeleteImage lost its answer (ECR deleted the tag); the next tries
    # stopped at the read of what production runs, before sending anything. The stop was said
    # as that read's failure alone: the tag, gone, was listed as not done, and a new run listed it
    # as not found (deleted before the run, or misspelt).
    stopped, sent = lost_then_read_fails(account, monkeypatch, RuntimeError("DynamoDB throttled the read of the "
                                                                             "ledger"), CleanupIncomplete)
    assert "DynamoDB throttled" in str(stopped), stopped
    assert sent == ["BatchDeleteImage"] and "old-version" not in tags(account), "the first try deleted it"
    assert ("ECR may have deleted the image tags of the call whose answer was lost (old-version), though listed as "
            "not done: a new run finds them gone and lists them as not found") in str(stopped), stopped


def test_a_cancel_after_a_lost_answer_keeps_nothing_of_the_run(account, monkeypatch):
    # A task run ends Crashed, not Failed, when a cancel (or Ctrl-C) stops it: its failure hooks
    # did not run, and what it kept for its tries stayed in the worker for good.
    class Cancelled(BaseException):
        pass

    lost_then_read_fails(account, monkeypatch, Cancelled(), Cancelled)


def test_tags_botocores_own_retry_finds_gone_are_said_deleted_by_this_run(account, monkeypatch, caplog):
    # ECR deleted the tags and answered with a 5xx: botocore retried BatchDeleteImage on its own, and
    # the retry's answer called them not found. They were reported "not found: deleted before, or
    # never there", and the summary listed the run's own deletion as somebody else's.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec, summary_markdown
    from tests.adapters.test_ecr_images import ecr_retried_after_deleting

    aws = account

    with ecr_retried_after_deleting(aws, monkeypatch, ["old-version", "0.9.0"]) as (ecr, answered):
        @flow(name="cleanup-ecr-retried")
        def cleanup_ecr_retried():
            return run_cleanup(CleanupSpec(old_image_tags=("old-version", "0.9.0")), aws.targets,
                               lambda service: ecr if service == "ecr" else aws.get_client(service))

        result = cleanup_ecr_retried()

    assert answered and tags(aws) == {"1.0.0"}
    assert result.deleted_tags == ("old-version", "0.9.0") and result.gone_tags == ()
    text = summary_markdown(result, aws.targets.ecr_repository)
    assert "old-version" not in text[text.index("## Not found"):]
    (said,) = [r.getMessage() for r in caplog.records if "retry found them gone" in r.getMessage()]
    assert said.startswith("image tag(s) old-version, 0.9.0: deleted (ECR's retry found them gone)"), said


def test_a_misspelt_image_tag_is_said_not_in_the_repository_naming_the_close_tag_there(account, repo, caplog):
    """It was listed under "Not found: deleted before, or never there" alone, and the run was
    Completed with the old image still there under its real tag. It still completes (a run stopped
    part-way is run again, finding the tags it deleted gone, and ECR cannot tell those apart)."""
    state = run(account, repo, old_image_tags=["old-versoin"])

    assert state.is_completed(), state.message
    assert state.result().gone_tags == ("old-versoin",) and "old-version" in tags(account)
    found = summary(state)[summary(state).index("## Not found"):]
    assert (f"- image tag `old-versoin`: not in `{account.targets.ecr_repository}`; tags "
            "there close to it: `old-version` (misspelt?)") in found, found
    assert found.count("old-versoin") == 1, found
    # The log's warning names it once too ("image tag old-versoin: no image tagged `old-versoin`").
    (warned,) = [r.getMessage() for r in caplog.records if "old-versoin" in r.getMessage()]
    assert warned.count("old-versoin") == 1 and "close to it: `old-version`" in warned, warned


def test_an_image_tag_not_in_the_repository_and_close_to_none_is_said_in_the_log(account, repo, caplog):
    # Only a tag close to one there (a misspelling's) was said in the log: one close to none (a
    # wrong repository, a tag deleted before) was in the artifact alone, and the log of the
    # Completed run read as if every tag asked for had been dealt with.
    state = run(account, repo, old_image_tags=["old-version", "3.1.4"])

    assert state.is_completed(), state.message
    assert state.result().gone_tags == ("3.1.4",)
    said = [r.getMessage() for r in caplog.records if "3.1.4" in r.getMessage()]
    assert said == [f"image tag `3.1.4`: not in `{account.targets.ecr_repository}`; {NOT_FOUND.lower()}"], said


def test_a_tag_pushed_again_after_the_plan_is_not_deleted(account):
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    ecr = read_client(aws, "ecr")
    reads: list[int] = []

    def push_again_before_the_second_read(**_):
        # CI pushes a new image under old-version between the plan and the deletion.
        reads.append(1)
        if len(reads) == 2:
            put_image(aws, "old-version", "9")

    @prefect_flow(name="cleanup-tag-moved")
    def cleanup_tag_moved():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version", "0.9.0")), aws.targets, aws.get_client)

    judged = digests(aws)["old-version"]
    with on_operation(ecr, "before-parameter-build", push_again_before_the_second_read, operation="DescribeImages"):
        state = cleanup_tag_moved(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    now = digests(aws)["old-version"]
    assert now != judged and tags(aws) == {"1.0.0", "old-version", "0.9.0"}, "no tag was deleted"
    assert f"old-version named {judged}, now {now}" in str(stopped.value)
    assert "no image tag was deleted" in str(stopped.value)
    assert stopped.value.not_done == ("image tag old-version", "image tag 0.9.0")


def start_using(aws, how: str, tag: str) -> str:
    """Make production start using the image ``tag`` names, as ``how`` says; what cleanup should
    name as its user."""
    from rollway.aws.ledger import DynamoLedger
    from rollway.ledger import RolloutRecord, new_rollout_id
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec

    ecs = aws.get_client("ecs")
    repository = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"][
        "containerDefinitions"][0]["image"].rsplit(":", 1)[0]
    if how == "rollout":  # a rollout recorded its start, pinned to the image's digest, and deploys it next
        spec, now = RolloutSpec(image=f"{repository}:{tag}"), 2_000_000.0
        rollout = RolloutRecord(service=aws.targets.canary_service, rollout_id=new_rollout_id(now), image=spec.image,
                                spec_json=spec.model_dump_json(), phase=RolloutPhase.PENDING, stable_desired=2,
                                pinned_image=f"{repository}@{digests(aws)[tag]}")
        DynamoLedger(aws.get_client("dynamodb"), aws.targets).create(rollout, owner="process/run", now=now,
                                                                     lease_seconds=0)
        return f"rollout {rollout.rollout_id} (pending) deploys it"
    family = aws.targets.task_family if how == "revision" else "webordinary-hotfix-edit"
    revision = ecs.register_task_definition(
        family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256", memory="512",
        containerDefinitions=[{"name": aws.targets.container_name, "essential": True, "image": f"{repository}:{tag}"}],
    )["taskDefinition"]["taskDefinitionArn"]
    if how == "revision":  # registered for a deployment: the family's newest ACTIVE revision
        return f"an ACTIVE revision of {family}"
    # Someone points the canary service at a revision of another family naming the old image.
    ecs.update_service(cluster=aws.targets.cluster, service=aws.targets.canary_service, taskDefinition=revision)
    return "the canary service deploys it"


@pytest.mark.parametrize("how", ["rollout", "revision", "service"])
def test_an_image_that_comes_into_use_after_the_plan_is_not_deleted(account, how):
    # Production started using an old image between the plan (which judged it unused) and the
    # deletion: a rollout started, a revision was registered, a service was pointed at it. Only
    # the repository was read again before deleting, and the image was deleted under it.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    put_image(aws, "old-version-b", "2")  # a second tag of the image that comes into use
    reads: list[int] = []
    users: list[str] = []

    def start_using_before_the_second_read(**_):
        reads.append(1)
        if len(reads) == 2:  # the repository's second read: after the plan, before the deletion
            users.append(start_using(aws, how, "old-version"))

    spec = CleanupSpec(old_image_tags=("old-version", "0.9.0", "old-version-b"), old_stacks=(OLD_STACK,))
    judged, unused = digests(aws)["old-version"], digests(aws)["0.9.0"]
    with on_operation(read_client(aws, "ecr"), "before-parameter-build", start_using_before_the_second_read,
                      operation="DescribeImages"):
        state, stopped = stopped_within(120, spec, aws.targets, aws.get_client, CleanupIncomplete)

    (user,) = users
    # The image in use keeps every tag; the unused image goes; the run stops before the stacks.
    assert tags(aws) == {"1.0.0", "old-version", "old-version-b"}
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"
    message = str(stopped)
    assert f"image tag(s) old-version, old-version-b: image {judged} came into use after the plan" in message, message
    assert user in message and "none of its tags was deleted" in message, message
    assert stopped.done == (f"deleted image tag 0.9.0 (image {unused}, deleted with it: its last tag) from "
                                  f"{aws.targets.ecr_repository}",)
    assert stopped.not_done == ("image tag old-version", "image tag old-version-b", f"stack {OLD_STACK}")
    text = summary(state)
    assert text.startswith("# Cleanup stopped part-way") and user in text, text


def test_an_old_stack_holding_the_rule_production_traffic_comes_through_is_refused(account, repo):
    # The old edit stack added its targets to the shared listener, so it holds the rule that now
    # forwards to the stable and canary groups (moto's CloudFormation cannot make a rule on a
    # listener it did not make: the stack's listing gains it here, as AWS would list it).
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.aws.elbv2 import AlbRouter
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    rule = AlbRouter(aws.get_client("elbv2"), aws.targets).rule_arn
    cloudformation = read_client(aws, "cloudformation")

    def holds_the_rule(parsed, **_):
        parsed["StackResourceSummaries"].append({
            "LogicalResourceId": "EditRule", "PhysicalResourceId": rule,
            "ResourceType": "AWS::ElasticLoadBalancingV2::ListenerRule", "ResourceStatus": "CREATE_COMPLETE"})

    @flow(name="cleanup-of-the-rule-holder")
    def cleanup_of_the_rule_holder():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(cloudformation, "after-call", holds_the_rule, operation="ListStackResources"):
        state = cleanup_of_the_rule_holder(return_state=True)

    with pytest.raises(CleanupRefused) as refused:
        state.result()
    (refusal,) = refused.value.refusals
    assert refusal.name == OLD_STACK and "the listener rule (path /*) that forwards production's traffic" in \
        refusal.reason, refusal.reason
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, OLD_QUEUE)


def refusal_of_the_old_stack_holding(aws, resource: str, kind: str):
    """The one refusal of a run deleting the old stack, listed as holding ``resource`` of type ``kind``
    as AWS would list it (moto's stack cannot make it), after checking the run deleted nothing."""
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    def holds_it(parsed, **_):
        parsed["StackResourceSummaries"].append({"LogicalResourceId": "Held", "PhysicalResourceId": resource,
                                                 "ResourceType": kind, "ResourceStatus": "CREATE_COMPLETE"})

    @prefect_flow(name="cleanup-of-the-holder")
    def cleanup_of_the_holder():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, "cloudformation"), "after-call", holds_it, operation="ListStackResources"):
        state = cleanup_of_the_holder(return_state=True)
    with pytest.raises(CleanupRefused) as refused:
        state.result()
    (refusal,) = refused.value.refusals
    assert refusal.name == OLD_STACK, refusal
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, OLD_QUEUE)
    return refusal


@pytest.mark.parametrize("held", ["vpc", "subnet", "security group", "certificate"])
def test_an_old_stack_holding_the_network_production_runs_in_is_refused_before_anything_is_deleted(account, held):
    # The old stack made the VPC, the subnets or the security group the services' tasks and the
    # load balancer still use, or the certificate a listener serves. CloudFormation deleted the rest
    # of the stack (the queue here; a route table or the internet gateway in AWS), then stopped at
    # DELETE_FAILED on what was in use.
    from tests.botocore_events import on_operation

    aws = account
    certificate = f"arn:aws:acm:{aws.targets.region}:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
    resource = {"vpc": aws.topology.vpc_id, "subnet": aws.topology.subnet_ids[1],
                "security group": aws.topology.security_group_id, "certificate": certificate}[held]

    def serves_the_certificate(parsed, **_):  # the listener as an HTTPS one answers (moto's is HTTP)
        for listener in parsed["Listeners"]:
            listener["Certificates"] = [{"CertificateArn": certificate}]

    with on_operation(read_client(aws, "elbv2"), "after-call", serves_the_certificate, operation="DescribeListeners"):
        refusal = refusal_of_the_old_stack_holding(aws, resource, "AWS::EC2::Thing")
    assert f"it holds {resource} (" in refusal.reason, refusal.reason
    user = {"vpc": f"the VPC of load balancer {aws.targets.load_balancer}",
            "certificate": f"the certificate of the listener on port {aws.targets.listener_port} of load balancer "
                           f"{aws.targets.load_balancer}"}.get(held, f"a {held} of the stable service "
                                                                     f"{aws.targets.stable_service}")
    assert user in refusal.reason, refusal.reason


def a_mount_target(aws) -> tuple[str, str, str]:
    """An EFS file system and a mount target of it in the second subnet: (file system, mount target, subnet)."""
    efs, subnet = aws.get_client("efs"), aws.topology.subnet_ids[1]
    data = efs.create_file_system(CreationToken="webordinary-data")["FileSystemId"]
    return data, efs.create_mount_target(FileSystemId=data, SubnetId=subnet)["MountTargetId"], subnet


def register_a_revision_mounting(aws, file_system: str) -> str:
    """A revision of the live family mounting ``file_system``: its family:revision."""
    ecs = aws.get_client("ecs")
    current = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"]
    return ecs.register_task_definition(
        family=aws.targets.task_family, containerDefinitions=current["containerDefinitions"],
        volumes=[{"name": "data", "efsVolumeConfiguration": {"fileSystemId": file_system}}],
    )["taskDefinition"]["taskDefinitionArn"].rsplit("/", 1)[-1]


def test_an_old_stack_holding_a_mount_target_of_a_file_system_in_use_is_refused_before_anything_is_deleted(account,
                                                                                                          caplog):
    # An ACTIVE revision of the family mounts an EFS file system, and the old stack made one of its
    # mount targets: deleted with the stack, the tasks in that subnet lost the file system.
    aws = account
    data, mount_target, subnet = a_mount_target(aws)
    mounting = register_a_revision_mounting(aws, data)

    refusal = refusal_of_the_old_stack_holding(aws, mount_target, "AWS::EFS::MountTarget")
    assert (
        f"it holds {mount_target} (a mount target in subnet {subnet} of the EFS file system {data}, which task "
        f"definition {mounting} mounts, an ACTIVE revision of {aws.targets.task_family})") in refusal.reason, \
        refusal.reason
    # The plan's log said "production runs in" the mount target: production mounts its file system through it.
    (said,) = [r.getMessage() for r in caplog.records if "EFS file systems through" in r.getMessage()]
    assert said.endswith(f"; it mounts EFS file systems through {mount_target}"), said
    assert "production runs in" not in said, said


def test_an_old_stack_holding_a_mount_target_of_a_file_system_mounted_since_the_plan_is_not_deleted(account):
    # No task definition mounted the file system when the plan read the old stack, holding one of its
    # mount targets; then a revision mounting it was registered, while the run deleted image tags
    # first: the stack deleted was judged on what production mounted by then.
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    data, mount_target, subnet = a_mount_target(aws)
    reads: list[int] = []
    mounting: list[str] = []

    def holds_it(parsed, **_):  # moto's stack cannot make a mount target: listed as AWS would
        parsed["StackResourceSummaries"].append({"LogicalResourceId": "Data", "PhysicalResourceId": mount_target,
                                                 "ResourceType": "AWS::EFS::MountTarget",
                                                 "ResourceStatus": "CREATE_COMPLETE"})

    def mounted_before_the_second_read(**_):
        reads.append(1)
        if len(reads) == 2:  # the repository read again after the plan, before any deletion
            mounting.append(register_a_revision_mounting(aws, data))

    spec = CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK,))
    with on_operation(read_client(aws, "cloudformation"), "after-call", holds_it, operation="ListStackResources"), \
            on_operation(read_client(aws, "ecr"), "before-parameter-build", mounted_before_the_second_read,
                         operation="DescribeImages"):
        _state, stopped = stopped_within(120, spec, aws.targets, aws.get_client, CleanupIncomplete)

    assert "0.9.0" not in tags(aws), "the image tags went before the stack"
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, OLD_QUEUE)
    assert (f"stack {OLD_STACK} was not deleted: since the plan judged it, it holds {mount_target} (a mount target "
            f"in subnet {subnet} of the EFS file system {data}, which task definition {mounting[0]} mounts, an "
            f"ACTIVE revision of {aws.targets.task_family})") in str(stopped), str(stopped)


def test_a_run_interrupted_while_deleting_a_stack_leaves_an_artifact_saying_what_was_deleted(account):
    # Ctrl-C raises a KeyboardInterrupt where the run is, and cancelling it from the UI Prefect's
    # TerminationSignal: the run ended with no artifact, and the image tags it had deleted before
    # were known to no one.
    from prefect.runtime import flow_run

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    runs: list[str] = []

    def cancelled(**_):
        raise KeyboardInterrupt

    @prefect_flow(name="cleanup-interrupted")
    def cleanup_interrupted():
        runs.append(flow_run.id)
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,), old_image_tags=("old-version",)), aws.targets,
                           aws.get_client)

    with on_operation(aws.get_client("cloudformation"), "before-call", cancelled, operation="DeleteStack"):
        with pytest.raises(KeyboardInterrupt):
            cleanup_interrupted()

    assert tags(aws) == {"1.0.0", "0.9.0"} and stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=runs)))
    (text,) = [a.data for a in found if a.key == ARTIFACT_KEY]
    assert text.startswith("# Cleanup stopped part-way"), text
    assert (f"interrupted (the run was cancelled, or its worker was stopped) while it tried to delete stack {OLD_STACK}"
            in text), text
    deleted = text[text.index("## Deleted: image tags"):text.index("## Deleted: stacks")]
    assert "- `old-version`" in deleted, text
    assert f"- stack {OLD_STACK}" in text[text.index("## Not done"):], text


def test_a_step_failing_while_the_artifact_api_refuses_still_says_what_was_done(account, monkeypatch, caplog):
    # The run's error is what says what was deleted and what was not: an artifact the Prefect
    # API refused replaced it with the API's error.
    import flows.cleanup
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    def refused(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not today"}}, "DeleteStack")

    def unavailable(**_):
        raise RuntimeError("the artifact API answered 503")

    monkeypatch.setattr(flows.cleanup, "create_markdown_artifact", unavailable)

    @prefect_flow(name="cleanup-without-artifacts")
    def cleanup_without_artifacts():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,), old_image_tags=("old-version",)), aws.targets,
                           aws.get_client)

    with on_operation(aws.get_client("cloudformation"), "before-call", refused, operation="DeleteStack"):
        state = cleanup_without_artifacts(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    assert "Done: deleted image tag old-version" in str(stopped.value)
    assert f"Not done: stack {OLD_STACK}" in str(stopped.value)
    assert "artifact could not be created: the artifact API answered 503" in caplog.text


def test_a_step_failing_with_no_message_says_the_exception_and_where(account):
    # A connection reset with no words of its own: the run's error and artifact said
    # "ConnectionResetError: " and nothing of what had stopped the deletion.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    def reset(**_):
        raise ConnectionResetError()

    @prefect_flow(name="cleanup-reset")
    def cleanup_reset():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("cloudformation"), "before-call", reset, operation="DeleteStack"):
        state = cleanup_reset(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    said = "ConnectionResetError with no message, raised at tests/flows/test_cleanup_flow.py:"
    assert said in str(stopped.value) and "ConnectionResetError: " not in str(stopped.value), stopped.value
    assert said in summary(state)


@pytest.mark.parametrize(("service", "operation", "action", "statement"), [
    ("cloudformation", "DescribeStacks", "cloudformation:DescribeStacks", "DeployChecklistAndCleanupReadTheStacks"),
    # Read for what production runs: the refusal said "check the targets block", names that were right.
    ("ecs", "DescribeServices", "ecs:DescribeServices", "CleanupReadsTheServicesAndTasksOfTheCluster"),
    # Granted on its cluster only (the ecs:cluster condition): the statement to copy with your cluster's ARN.
    ("ecs", "ListServices", "ecs:ListServices", "CleanupListsTheServicesAndTasksOfTheCluster"),
])
def test_a_read_the_role_may_not_make_fails_at_once_naming_the_action_and_its_statement(account, service, operation,
                                                                                       action, statement):
    # AWS refuses a missing permission the same way every time: the read used to be asked three
    # times (1 s and 5 s apart) and fail with a bare ClientError naming no policy.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.aws.denied import PermissionDenied
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    asked: list[str] = []

    def refuse(**_):
        asked.append(operation)
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "User: arn:aws:sts::123456789012:assumed-role/"
                           f"worker/i is not authorized to perform: {action} on resource: *"}}, operation)

    @flow(name="cleanup-denied-read")
    def cleanup_denied_read():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, service), "before-parameter-build", refuse, operation=operation):
        state = cleanup_denied_read(return_state=True)

    with pytest.raises(PermissionDenied) as refused:
        state.result()
    assert asked == [operation], "asked once: a refused permission is not retried"
    message = str(refused.value)
    assert f"AWS refused {action} (AccessDenied:" in message and "targets block" not in message
    assert f"granted by deployments/iam-policy-infrastructure.json, statement {statement}: " in message
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"


def test_a_deletion_the_role_may_not_make_names_the_statement_that_grants_it(account):
    # DeleteStack's refusal often names no action ("... is not authorized to perform this
    # operation"): the operation and the policies still tell which.
    from tests.botocore_events import on_operation

    aws = account

    def refuse(**_):
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "DeleteStack")

    with on_operation(aws.get_client("cloudformation"), "before-parameter-build", refuse, operation="DeleteStack"):
        from prefect import flow

        from flows.cleanup import run_cleanup
        from rollway.cleanup import CleanupSpec

        @flow(name="cleanup-denied-delete")
        def cleanup_denied_delete():
            return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

        state = cleanup_denied_delete(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    assert "PermissionDenied: AWS refused cloudformation:DeleteStack" in str(stopped.value)
    assert "granted by deployments/iam-policy-infrastructure.json, statement CleanupDeletesOldStacks:" in str(
        stopped.value)
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"


def refused_after_delete_stack(operation: str, asked: list[str]) -> Callable[..., None]:
    """A before-call handler noting each CloudFormation call in ``asked`` and refusing ``operation``
    (AccessDenied, in IAM's words) once DeleteStack was sent."""

    def refuse(model, **_):
        asked.append(model.name)
        if "DeleteStack" in asked[:-1] and model.name == operation:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "User: arn:aws:sts::123456789012:assumed-"
                               f"role/worker/i is not authorized to perform: cloudformation:{operation} on resource: "
                               "*"}}, model.name)

    return refuse


def test_a_read_of_a_deletions_progress_refused_says_delete_stack_was_sent_and_names_the_statement(account):
    # DeleteStack sent, the reads of its progress refused: the run said the refused read's
    # statement alone, and a person could take it that the stack had not been asked to go.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    @flow(name="cleanup-denied-progress")
    def cleanup_denied_progress():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("cloudformation"), "before-call", refused_after_delete_stack("DescribeStacks", []),
                      operation=None):
        state = cleanup_denied_progress(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    said = str(stopped.value)
    assert f"StackDeleteUnfollowed: stack '{OLD_STACK}': DeleteStack was sent and CloudFormation took it" in said, said
    assert "AWS refused cloudformation:DescribeStacks (AccessDenied:" in said, said
    assert "granted by deployments/iam-policy-infrastructure.json, statement DeployChecklistAndCleanupReadTheStacks:" \
        in said, said


def test_a_failed_deletion_whose_events_are_refused_names_the_statement_granting_them(account):
    # DELETE_FAILED read, then the read of its events refused: the failure gave AWS's refusal
    # alone, where every other refused read of the deletion names the statement of cleanup's
    # policy granting it, and the person fixing the role had to find that statement.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    client = aws.get_client("cloudformation")
    asked: list[str] = []

    def stopped(parsed, **_):  # moto deletes at once: CloudFormation seen stopping the deletion
        if "DeleteStack" in asked:
            for stack in parsed.get("Stacks", []):
                stack.update(StackStatus="DELETE_FAILED",
                             StackStatusReason="The following resource(s) failed to delete: [Queue]. ")

    @flow(name="cleanup-denied-failure-events")
    def cleanup_denied_failure_events():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    refuse = refused_after_delete_stack("DescribeStackEvents", asked)
    with on_operation(client, "before-call", refuse, operation=None), \
            on_operation(client, "after-call", stopped, operation="DescribeStacks"):
        state = cleanup_denied_failure_events(return_state=True)

    with pytest.raises(CleanupIncomplete) as failed:
        state.result()
    said = str(failed.value)
    assert f"StackDeleteFailed: stack '{OLD_STACK}' ended in DELETE_FAILED: The following resource(s) failed to " \
           "delete: [Queue]. (its events, which name each resource's reason, could not be read: AWS refused " \
           "cloudformation:DescribeStackEvents (AccessDenied:" in said, said
    assert "granted by deployments/iam-policy-infrastructure.json, statement DeployAndCleanupReadTheStacksEvents:" \
        in said, said


@pytest.mark.parametrize("targets", [Targets(region="eu-central-1")])
def test_a_refusal_in_the_users_region_names_cleanups_statement_not_the_rollouts(account):
    # The policies spell us-west-2; a run in another region is refused ECR's reads on its
    # repository there, as AWS would refuse them under the documented infrastructure policy. The
    # repository's ARN in eu-central-1 matched only the rollout policy's statement for a shared
    # registry (its region a placeholder), so the refusal sent the cleanup role's owner to
    # deployments/iam-policy.json: the run's own names (its region) now stand for the policies'.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.aws.denied import PermissionDenied
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    asked: list[str] = []
    as_aws_refuses = refused_as_the_cleanup_policy_would(aws, "ecr", "DescribeImages", "AccessDeniedException", asked)

    @flow(name="cleanup-denied-in-another-region")
    def cleanup_denied_in_another_region():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version",)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, "ecr"), "before-parameter-build", as_aws_refuses, operation="DescribeImages"):
        state = cleanup_denied_in_another_region(return_state=True)

    with pytest.raises(PermissionDenied) as refused:
        state.result()
    assert asked == [f"arn:aws:ecr:eu-central-1:123456789012:repository/{aws.targets.ecr_repository}"]
    assert refused.value.grant == "deployments/iam-policy-infrastructure.json, statement CleanupDeletesOldImages"
    assert "iam-policy.json" not in str(refused.value)
    assert "old-version" in tags(aws)


def test_a_refusal_on_a_stack_of_the_users_names_says_to_extend_the_statements_resource_to_it(account):
    # The policies grant the stack reads and deletion on Webordinary's names (stack/webordinary-*,
    # stack/Webordinary*): a user's old stack is refused under the documented policy, and the
    # refusal said only to add the statement, which, added as it is, is refused the same way.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.aws.denied import PermissionDenied
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws, stack = account, "AcmeOldStack"
    body = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "acme-old-queue"}}}}
    aws.get_client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(body))
    asked: list[str] = []
    as_aws_refuses = refused_as_the_cleanup_policy_would(aws, "cloudformation", "ListStackResources", "AccessDenied",
                                                         asked)

    @flow(name="cleanup-denied-on-the-users-stack")
    def cleanup_denied_on_the_users_stack():
        return run_cleanup(CleanupSpec(old_stacks=(stack,)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, "cloudformation"), "before-parameter-build", as_aws_refuses,
                      operation="ListStackResources"):
        state = cleanup_denied_on_the_users_stack(return_state=True)

    with pytest.raises(PermissionDenied) as refused:
        state.result()
    (arn,) = asked
    assert f":stack/{stack}/" in arn, arn
    assert refused.value.grant == "deployments/iam-policy-infrastructure.json, statement CleanupReadsTheStacksItDeletes"
    assert refused.value.uncovered == arn
    assert (f"it is granted by {refused.value.grant}, but not on {arn}: add that statement to that role or user with "
            f"{arn} (or a pattern of your names) in its Resource, then run again") in str(refused.value), refused.value
    assert stack_status(aws, stack) == "CREATE_COMPLETE"


SILENT_READ_SECONDS = 5
"""The read bound of the runs that meet a silent service: every other read of such a run must be
answered within it by the embedded AWS, which took up to 0.8 s (a stack's five calls) on a loaded
machine; at 1 s such a read was given up on now and then, failing the run before the silent one.
Six times that, for the suite's three workers on two cores that others share."""

SILENT_READ_ENDS_WITHIN = 30
"""How soon after its silent read was sent such a run ends, on ``silent_client``: within the bound
and the run's wrap-up (its failure and artifact recorded by a Prefect harness that takes seconds
on a loaded machine, which at 10 s had only a few seconds left), and well before that client's
own timeout of 60 s, which a run waiting on the read given up on would reach. Counted from the
silent read, not the run's start: on a loaded machine the reads and the push before it took the
whole run past 20 s."""

EMBEDDED_SILENT_READ_ENDS_WITHIN = 15
"""As ``SILENT_READ_ENDS_WITHIN``, for a silent read on the embedded AWS's own clients (two
attempts of 10 s, each sent to the silent endpoint): a run waiting on the read given up on ends
past 20 s."""


def silent_client(service: str, endpoint: str, region: str):
    """A client of ``service`` on ``endpoint`` (``silent_endpoint``) that waits a minute for an answer."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=endpoint, region_name=region, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(read_timeout=60, retries={"mode": "standard", "total_max_attempts": 1}))


def stopped_within(seconds: float, spec, targets, get_client, error: type[BaseException], *,
                   since: list[float] | None = None):
    """A run of ``spec`` on ``get_client``, asserted to have failed with ``error`` within ``seconds``
    (of its start, or of ``since[0]``: a time.monotonic() the run recorded, its silent read's
    sending): its final state and the error."""
    import time

    from flows.cleanup import run_cleanup

    @prefect_flow(name="cleanup-bounded-reads")
    def cleanup_bounded_reads():
        return run_cleanup(spec, targets, get_client)

    began = time.monotonic()
    state = cleanup_bounded_reads(return_state=True)
    ended = time.monotonic()
    with pytest.raises(error) as caught:
        state.result()
    if since is not None:
        assert since, "the run sent no read to the silent endpoint"
        began = since[0]
    assert ended - began < seconds, ended - began
    return state, caught.value


def sent_at(times: list[float]) -> None:
    """Append the time now to ``times`` (a silent read's sending, for ``stopped_within``)."""
    import time

    times.append(time.monotonic())


@pytest.mark.parametrize(("service", "service_id", "reading"), [
    ("ecs", "ECS", "what production runs"),
    ("ecr", "ECR", "the images of webordinary/edit-container"),
    ("cloudformation", "CloudFormation", f"stack {OLD_STACK}"),
    ("elbv2", "Elastic Load Balancing v2", "the listener and rule production's traffic comes through"),
])
def test_a_service_that_does_not_answer_a_read_stops_the_run_within_the_bound_before_anything_is_written(
        account, repo, silent_endpoint, service, service_id, reading):
    # On the run's clients (a minute per read here, ten seconds six times in AWS's default
    # settings, and the task asked three times) a service that stopped answering held the run
    # for minutes per read, with no line in its log saying why.
    import re

    from rollway.cleanup import CleanupReadUnanswered, CleanupSpec

    aws = account
    silent = silent_client(service, silent_endpoint, aws.targets.region)
    sent: list[float] = []
    silent.meta.events.register("before-send", lambda **_: sent_at(sent))
    spec = CleanupSpec(old_stacks=(OLD_STACK,), old_image_tags=("old-version",), archive_tag=TAG,
                       archive_message=MESSAGE, repo_dir=str(repo), read_timeout_seconds=SILENT_READ_SECONDS)

    _, unanswered = stopped_within(SILENT_READ_ENDS_WITHIN, spec, aws.targets,
                                   lambda name: silent if name == service else aws.get_client(name),
                                   CleanupReadUnanswered, since=sent)
    message = str(unanswered)
    found = re.fullmatch(
        rf"{service_id} did not answer (\w+) within {SILENT_READ_SECONDS} s \(read_timeout_seconds\), read for "
        rf"{re.escape(reading)}; "
        rf"nothing was deleted \(nor archived\): run cleanup again once {service_id} answers \(or with a longer "
        r"read_timeout_seconds\)", message)
    assert found, message
    assert found.group(1) in silent.meta.service_model.operation_names, message
    untouched(aws, repo)


def test_a_read_that_answers_slowly_within_the_bound_still_lets_the_run_delete(account, repo):
    import time

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    def slowly(**_):
        time.sleep(1.5)

    @prefect_flow(name="cleanup-slow-read")
    def cleanup_slow_read():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,), read_timeout_seconds=4), aws.targets,
                           lambda name: aws.get_client(name))

    with on_operation(aws.get_client("cloudformation"), "before-send", slowly, operation="DescribeStacks"):
        state = cleanup_slow_read(return_state=True)

    assert state.is_completed(), state.message
    assert state.result().deleted_stacks == (OLD_STACK,) and stack_status(aws, OLD_STACK) is None


def test_a_read_unanswered_after_the_archive_says_what_was_done_and_deletes_nothing(account, repo, silent_endpoint):
    # The second read of the repository (each tag still names the image the plan judged) comes
    # after the archive tag was created and pushed: its failure says so, as a failed push does.
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    reads: list[int] = []
    sent: list[float] = []

    def to_a_silent_endpoint(request, **_):
        reads.append(1)
        if len(reads) >= 2:  # the second read, and each of its client's attempts again
            request.url = silent_endpoint + "/"
            sent_at(sent)

    spec = CleanupSpec(old_stacks=(OLD_STACK,), old_image_tags=("old-version",), archive_tag=TAG,
                       archive_message=MESSAGE, repo_dir=str(repo), read_timeout_seconds=SILENT_READ_SECONDS)

    with on_operation(aws.get_client("ecr"), "before-send", to_a_silent_endpoint, operation="DescribeImages"):
        state, stopped = stopped_within(EMBEDDED_SILENT_READ_ENDS_WITHIN, spec, aws.targets,
                                        lambda name: aws.get_client(name), CleanupIncomplete, since=sent)
    message = str(stopped)
    head = git(repo, "rev-parse", "HEAD")
    assert ("check that each image tag still names the image the plan judged: CleanupReadUnanswered: ECR did not "
            f"answer DescribeImages within {SILENT_READ_SECONDS} s (read_timeout_seconds), read for the images of "
            f"{aws.targets.ecr_repository}. Done: archived: tag `{TAG}` -> {head}: created; archive: `{TAG}` on remote "
            f"`origin`: pushed. Not done: image tag old-version; stack {OLD_STACK}.") in message, message
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"} and stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"
    assert "## Not done" in summary(state)


def test_a_read_of_what_production_runs_unanswered_before_the_deletion_says_what_was_done(account, repo,
                                                                                          silent_endpoint):
    # What production runs is read again right before the tags go, after the archive: unanswered,
    # it stops the run on the same bound, saying the archive was done, and deletes no tag.
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    reads: list[int] = []
    sent: list[float] = []

    def after_the_second_repository_read(**_):
        reads.append(1)

    def to_a_silent_endpoint(request, **_):
        if len(reads) >= 2:  # the plan is made: this is the read before the deletion
            request.url = silent_endpoint + "/"
            sent_at(sent)

    spec = CleanupSpec(old_stacks=(OLD_STACK,), old_image_tags=("old-version",), archive_tag=TAG,
                       archive_message=MESSAGE, repo_dir=str(repo), read_timeout_seconds=SILENT_READ_SECONDS)

    with on_operation(aws.get_client("ecr"), "before-parameter-build", after_the_second_repository_read,
                      operation="DescribeImages"), \
            on_operation(aws.get_client("ecs"), "before-send", to_a_silent_endpoint, operation=None):
        state, stopped = stopped_within(EMBEDDED_SILENT_READ_ENDS_WITHIN, spec, aws.targets,
                                        lambda name: aws.get_client(name), CleanupIncomplete, since=sent)
    message = str(stopped)
    head = git(repo, "rev-parse", "HEAD")
    assert ("delete 1 image tag(s) (old-version) from webordinary/edit-container: CleanupReadUnanswered: ECS did not "
            "answer ") in message, message
    assert (f"within {SILENT_READ_SECONDS} s (read_timeout_seconds), read for what production runs. Done: "
            f"archived: tag `{TAG}` -> {head}: created; archive: `{TAG}` on remote `origin`: pushed. Not done: "
            f"image tag old-version; stack {OLD_STACK}.") in message, message
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"} and stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"


def test_a_read_bound_out_of_range_is_refused_before_any_aws_call(account, repo, every_call):
    calls = [every_call(s) for s in ("ecs", "ecr", "cloudformation")]
    for bad in (0, 601):
        state = run(account, repo, old_stacks=[OLD_STACK], read_timeout_seconds=bad)
        assert state.is_failed() and "read_timeout_seconds" in state.message, state.message
    assert calls == [[], [], []]
    untouched(account, repo)


def test_an_old_stack_that_is_not_a_stack_name_is_refused_before_any_aws_call(account, repo, every_call):
    # Refused as the run's parameters are (flows.params.StackName), as the body's CleanupSpec
    # refused it before the credentials were loaded.
    calls = [every_call(s) for s in ("sts", "ecs", "ecr", "cloudformation")]
    for bad in ("not a stack", "WebordinaryOldStack\n"):
        state = run(account, repo, old_stacks=[OLD_STACK, bad])
        assert state.is_failed() and f"{bad!r} is not a CloudFormation stack name" in state.message, state.message
    assert calls == [[], [], [], []]
    untouched(account, repo)


def test_a_run_that_fails_before_writing_leaves_an_artifact_saying_nothing_was_written(account, repo):
    # Such a run left no artifact: the key's newest was the previous run's summary ("Cleanup
    # done", and what it deleted), which read as this one's.
    aws = account
    assert run(aws, repo, old_image_tags=["old-version"]).is_completed()

    git(repo, "remote", "remove", "origin")
    state = run(aws, repo, old_image_tags=["0.9.0"], archive_tag="another-archive")
    assert state.is_failed()
    text = summary(state)
    assert text.startswith("# Cleanup stopped before anything was written"), text
    assert "could not read the tags of remote 'origin'" in text and "Nothing was archived or deleted" in text

    assert tags(aws) == {"1.0.0", "0.9.0"} and stack_status(aws, OLD_STACK) == "CREATE_COMPLETE"


def test_a_remote_the_checkout_lacks_says_to_name_another_or_not_to_push(account, repo):
    # git's own words ("'origin' does not appear to be a git repository") said what failed, not
    # which parameter to change.
    aws = account
    git(repo, "remote", "rename", "origin", "upstream")
    state = run(aws, repo, old_image_tags=["old-version"])
    assert state.is_failed()
    for said in (state.message, summary(state)):
        assert "'origin' does not appear to be a git repository" in said, said
        assert "set `remote` to one of repo_dir's remotes" in said and "or set push=False" in said, said
    untouched(aws, repo)

    # As it says: without the push, the tag is archived in the checkout only.
    state = run(aws, repo, old_image_tags=["old-version"], push=False)
    assert state.is_completed(), state.message
    assert git(repo, "tag", "-l") == TAG and state.result().pushed is None

def test_a_bad_parameter_is_said_as_other_flows_say_theirs_without_pydantics_link(account, repo):
    # Two problems the run's body finds (a bad stack name is refused before it, by the parameters' types).
    state = run(account, repo, archive_tag="bad..tag", old_image_tags=["webordinary:old-version"])
    assert state.is_failed()
    for said in (state.message, summary(state)):
        assert "Flow run received invalid parameters:" in said, said
        assert " - archive_tag: " in said and " - old_image_tags: " in said, said
        assert "errors.pydantic.dev" not in said and "For further information" not in said, said
    # A problem of the parameters together is said without an empty name before it.
    state = run(account, repo, archive_tag=None, archive_message="", repo_dir=None)
    assert state.is_failed() and "\n - Value error, nothing to clean up" in state.message, state.message
    untouched(account, repo)


def update_the_old_queue(cloudformation, seconds: int) -> None:
    """OLD_STACK deployed again, its queue's VisibilityTimeout set to ``seconds``: no resource added
    or replaced, and moto sets no LastUpdatedTime."""
    body = cloudformation.get_template(StackName=OLD_STACK)["TemplateBody"]
    body = json.loads(body) if isinstance(body, str) else body
    body["Resources"]["Queue"]["Properties"]["VisibilityTimeout"] = seconds
    cloudformation.update_stack(StackName=OLD_STACK, TemplateBody=json.dumps(body))


def change_the_old_stack(aws, how: str) -> str:
    """Change OLD_STACK as ``how`` says, after the plan judged it; what cleanup should say of it."""
    cloudformation = aws.get_client("cloudformation")
    if how == "updated":  # someone deployed the old stack again: a second queue in it
        body = {"Resources": {name: {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}
                              for name, queue in (("Queue", OLD_QUEUE), ("Second", f"{OLD_QUEUE}-2"))}}
        cloudformation.update_stack(StackName=OLD_STACK, TemplateBody=json.dumps(body))
        return ("it changed after the plan judged it (its status is UPDATE_COMPLETE now, not CREATE_COMPLETE as the "
                "plan read it)")
    if how == "updated again":  # deployed again, UPDATE_COMPLETE as before, holding the same resources
        update_the_old_queue(cloudformation, 45)
        return "it changed after the plan judged it (CloudFormation has worked on it since the plan read it: its newest"
    if how == "deleted":  # someone deleted it by hand meanwhile
        cloudformation.delete_stack(StackName=OLD_STACK)
        return f"stack {OLD_STACK} was already gone: deleted since the plan read it"
    # A revision of the live family registered since, whose task role the old stack made.
    (role,) = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(
        StackName=OLD_STACK)["StackResourceSummaries"] if r["ResourceType"] == "AWS::IAM::Role"]
    role_arn = aws.get_client("iam").get_role(RoleName=role)["Role"]["Arn"]
    ecs = aws.get_client("ecs")
    base = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"]
    revision = ecs.register_task_definition(
        family=aws.targets.task_family, taskRoleArn=role_arn, requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc", cpu="256", memory="512", containerDefinitions=base["containerDefinitions"],
    )["taskDefinition"]["taskDefinitionArn"]
    return (f"since the plan judged it, it holds {role} (the task role of task definition "
            f"{revision.rsplit('/', 1)[-1]}")


@pytest.mark.parametrize("how", ["updated", "updated again", "in use", "deleted"])
def test_a_stack_that_changed_after_the_plan_is_not_deleted_and_the_run_says_why(account, how):
    # The plan judged the old stack, then the run deleted image tags (and, in AWS, waited on other
    # stacks for minutes) before it: the stack deleted was whatever it had become by then.
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    role_trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                          "Principal": {"Service": "ecs-tasks.amazonaws.com"}}]}
    other, cloudformation = "webordinary-older-stack", aws.get_client("cloudformation")
    cloudformation.delete_stack(StackName=OLD_STACK)  # made again below, with the task role it made too
    for name, queue in ((OLD_STACK, OLD_QUEUE), (other, "webordinary-older-queue")):
        resources = {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}}
        if name == OLD_STACK:
            resources["Role"] = {"Type": "AWS::IAM::Role", "Properties": {
                "RoleName": "webordinary-old-task", "AssumeRolePolicyDocument": role_trust}}
        cloudformation.create_stack(StackName=name, TemplateBody=json.dumps({"Resources": resources}))
    if how == "updated again":  # UPDATE_COMPLETE when the plan reads it, and after its next update
        update_the_old_queue(cloudformation, 30)
    assert stack_status(aws, OLD_STACK) == ("UPDATE_COMPLETE" if how == "updated again" else "CREATE_COMPLETE")
    reads: list[int] = []
    said: list[str] = []

    def change_before_the_second_read(**_):
        reads.append(1)
        if len(reads) == 2:  # the repository read again after the plan, before any deletion
            said.append(change_the_old_stack(aws, how))

    spec = CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK, other))
    with on_operation(read_client(aws, "ecr"), "before-parameter-build", change_before_the_second_read,
                      operation="DescribeImages"):
        if how == "deleted":
            from flows.cleanup import run_cleanup

            @prefect_flow(name="cleanup-stack-gone")
            def cleanup_stack_gone():
                return run_cleanup(spec, aws.targets, aws.get_client)

            state = cleanup_stack_gone(return_state=True)
            stopped = None
        else:
            state, stopped = stopped_within(120, spec, aws.targets, aws.get_client, CleanupIncomplete)

    (why,) = said
    assert "0.9.0" not in tags(aws), "the image tags went before the stacks"
    assert stack_status(aws, other) is None, "a stack unchanged since the plan is still deleted"
    text = summary(state)
    if how == "deleted":
        assert state.is_completed(), state.message
        assert state.result().gone_stacks == (OLD_STACK,) and state.result().deleted_stacks == (other,)
        assert f"- `{OLD_STACK}`" in text[text.index("## Already deleted: stacks"):], text
        return
    assert stack_status(aws, OLD_STACK) in ("UPDATE_COMPLETE", "CREATE_COMPLETE") and queue_exists(aws, OLD_QUEUE)
    message = str(stopped)
    assert f"stack {OLD_STACK} was not deleted: {why}" in message, message
    assert stopped.not_done == (f"stack {OLD_STACK}",)
    assert text.startswith("# Cleanup stopped part-way") and why in text, text
    assert f"- `{other}`" in text[text.index("## Deleted: stacks"):], text


INNER_QUEUE = "webordinary-old-inner"


def queues(*names: str) -> str:
    """A template of SQS queues of these names."""
    return json.dumps({"Resources": {f"Queue{i}": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": name}}
                                     for i, name in enumerate(names)}})


def old_stack_with_a_nested_one(aws) -> str:
    """OLD_STACK made again with a nested stack (holding INNER_QUEUE) beside OLD_QUEUE: the nested stack's id."""
    cloudformation, s3 = aws.get_client("cloudformation"), aws.get_client("s3")
    s3.create_bucket(Bucket="old-templates", CreateBucketConfiguration={"LocationConstraint": aws.targets.region})
    s3.put_object(Bucket="old-templates", Key="queues.json", Body=queues(INNER_QUEUE))
    cloudformation.delete_stack(StackName=OLD_STACK)  # made again below, with a nested stack
    cloudformation.create_stack(StackName=OLD_STACK, TemplateBody=json.dumps({"Resources": {
        "Queues": {"Type": "AWS::CloudFormation::Stack",
                   "Properties": {"TemplateURL": "https://old-templates.s3.amazonaws.com/queues.json"}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": OLD_QUEUE}}}}))
    (nested,) = [r["PhysicalResourceId"] for r in cloudformation.list_stack_resources(
        StackName=OLD_STACK)["StackResourceSummaries"] if r["ResourceType"] == "AWS::CloudFormation::Stack"]
    return nested


def run_changing_a_nested_stack(aws, change: Callable[[Any, str], None]):
    """OLD_STACK made again with a nested stack (holding INNER_QUEUE) beside OLD_QUEUE, then a run
    deleting an image tag and it, ``change(cloudformation, nested stack id)`` made after the plan,
    before any deletion: the run's final state."""
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    cloudformation = aws.get_client("cloudformation")
    nested = old_stack_with_a_nested_one(aws)
    reads: list[int] = []

    def change_before_the_second_read(**_):
        reads.append(1)
        if len(reads) == 2:  # the repository read again after the plan, before any deletion
            change(cloudformation, nested)

    @prefect_flow(name="cleanup-nested-changed")
    def cleanup_nested_changed():
        return run_cleanup(CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK,)), aws.targets,
                           aws.get_client)

    with on_operation(read_client(aws, "ecr"), "before-parameter-build", change_before_the_second_read,
                      operation="DescribeImages"):
        state = cleanup_nested_changed(return_state=True)
    assert len(reads) >= 2 and "0.9.0" not in tags(aws), "the image tags went before the stack"
    return state


def test_a_stack_whose_nested_stack_was_updated_on_its_own_after_the_plan_is_not_deleted(account):
    # A nested stack updated by itself leaves its root's status and LastUpdatedTime as they were:
    # the root, read again, passed for the stack the plan judged, and its deletion took the queue
    # added since with it, while the run's record listed what the plan had read, without it.
    aws, added = account, "webordinary-old-added"
    state = run_changing_a_nested_stack(aws, lambda cloudformation, nested: cloudformation.update_stack(
        StackName=nested, TemplateBody=queues(INNER_QUEUE, added)))

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, added) and queue_exists(aws, OLD_QUEUE)
    message = str(stopped.value)
    assert (f"stack {OLD_STACK} was not deleted: it changed after the plan judged it (a nested stack of it was "
            "updated on its own: it holds ") in message, message
    assert f"/{added} now, which the plan did not read" in message, message
    assert stopped.value.not_done == (f"stack {OLD_STACK}",)
    text = summary(state)
    assert f"/{added} now, which the plan did not read" in text[text.index("## Kept: planned stacks"):], text


def test_a_deleted_stacks_record_lists_what_it_held_when_read_again_right_before_its_deletion(account):
    # A nested stack deleted on its own after the plan took its queue with it: the root went on to
    # be deleted (nothing it held was unread), and the record said the root held that queue then.
    aws = account
    state = run_changing_a_nested_stack(aws, lambda cloudformation, nested: cloudformation.delete_stack(
        StackName=nested))

    assert state.is_completed(), state.message
    assert stack_status(aws, OLD_STACK) is None and not queue_exists(aws, OLD_QUEUE)
    held = state.result().stack_resources[OLD_STACK]
    assert len(held) == 2 and not [r for r in held if r.endswith(f"/{INNER_QUEUE}")], held
    # Each with its type, as read then: what the summary tells a root's resources from its nested stacks' by.
    assert [holding.type for holding in state.result().stack_holdings[OLD_STACK]] == [
        "AWS::CloudFormation::Stack", "AWS::SQS::Queue"], state.result().stack_holdings
    text = summary(state)
    assert f"- `{OLD_STACK}`, with the 2 resource(s) it holds:" in text and INNER_QUEUE not in text, text


def test_a_nested_stack_listed_after_its_root_is_said_deleted_with_it_by_this_run(account, caplog):
    # Its root's deletion deleted it: read again at its turn it was gone, and the run said "already
    # gone: deleted since the plan read it" and listed it as deleted before the run, by hand or an
    # earlier run, though this run had deleted it.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    cloudformation = aws.get_client("cloudformation")
    nested_id = old_stack_with_a_nested_one(aws)
    nested = cloudformation.describe_stacks(StackName=nested_id)["Stacks"][0]["StackName"]
    root_id = cloudformation.describe_stacks(StackName=OLD_STACK)["Stacks"][0]["StackId"]

    def as_aws_answers(parsed, **_):  # moto leaves out a nested stack's RootId and ParentId
        for stack in parsed.get("Stacks", []):
            if stack["StackName"] == nested:
                stack.update(RootId=root_id, ParentId=root_id)

    @prefect_flow(name="cleanup-nested-after-root")
    def cleanup_nested_after_root():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK, nested)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, "cloudformation"), "after-call", as_aws_answers, operation="DescribeStacks"):
        state = cleanup_nested_after_root(return_state=True)
    assert state.is_completed(), state.message
    assert stack_status(aws, OLD_STACK) is None and stack_status(aws, nested) is None
    assert state.result().deleted_stacks == (OLD_STACK, nested) and state.result().gone_stacks == ()
    text = summary(state)
    assert "Already deleted" not in text, text
    assert f"- `{nested}`" in text[text.index("## Deleted: stacks"):], text
    assert f"deleted stack {nested} with its root stack {OLD_STACK}" in caplog.text, caplog.text
    assert "already gone" not in caplog.text, caplog.text


@contextmanager
def deletion_failed_before_its_turn(aws, reason: str) -> Iterator[list[int]]:
    """The old stack's deletion under way when the plan reads it (DELETE_IN_PROGRESS), failed
    (DELETE_FAILED, for ``reason``) by the repository's read again after the plan, before any
    deletion. moto never fails a deletion: its answers to DescribeStacks say what AWS would.
    Yields a list that is not empty once the deletion has failed."""
    from tests.botocore_events import on_operation

    failed: list[int] = []

    def as_aws_answers(parsed, **_):
        for stack in parsed.get("Stacks", []):
            if stack["StackName"] == OLD_STACK:
                stack["StackStatus"] = "DELETE_FAILED" if failed else "DELETE_IN_PROGRESS"
                if failed:
                    stack["StackStatusReason"] = reason

    reads: list[int] = []

    def fail_before_the_second_read(**_):
        reads.append(1)
        if len(reads) == 2:  # the repository read again after the plan, before any deletion
            failed.append(1)

    with on_operation(read_client(aws, "cloudformation"), "after-call", as_aws_answers, operation="DescribeStacks"), \
            on_operation(read_client(aws, "ecr"), "before-parameter-build", fail_before_the_second_read,
                         operation="DescribeImages"):
        yield failed


@pytest.mark.parametrize("later", ["none", "fails"])
def test_a_stack_whose_deletion_under_way_at_the_plan_failed_before_its_turn_is_kept_saying_why(account, later):
    # The plan read the old stack DELETE_IN_PROGRESS (a run that stopped while waiting for it, or
    # someone deleting it by hand); by its turn that deletion had failed. Kept, as a stack that
    # changed, the run said only "its status is DELETE_FAILED now", not why, nor what comes next.
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    def refused(**_):
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "try again later"}}, "DeleteStack")

    # A later stack whose deletion fails stops the run: what it says must still say why the first was kept.
    other = "webordinary-older-stack"
    aws.get_client("cloudformation").create_stack(StackName=other, TemplateBody=json.dumps({"Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "webordinary-older-queue"}}}}))
    spec = CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK,) + ((other,) if later == "fails" else ()))
    with deletion_failed_before_its_turn(aws, "The following resource(s) failed to delete: [Queue]. ") as failed, \
            on_operation(aws.get_client("cloudformation"), "before-call", refused, operation="DeleteStack"):
        state, stopped = stopped_within(120, spec, aws.targets, aws.get_client, CleanupIncomplete)

    why = ("its deletion, under way when the plan read it, failed: it is DELETE_FAILED now (CloudFormation's reason: "
           "The following resource(s) failed to delete: [Queue].); this run did not try again: fix what stopped it, "
           "and the next cleanup run judges the stack afresh, as it is then")
    assert failed and "0.9.0" not in tags(aws), "the image tags went before the stack"
    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE" and queue_exists(aws, OLD_QUEUE), "not deleted again"
    assert f"stack {OLD_STACK} was not deleted: {why}" in str(stopped), stopped
    text = summary(state)
    assert f"- `{OLD_STACK}`: {why}" in text[text.index("## Kept: planned stacks not deleted after all"):], text
    if later == "none":
        assert stopped.not_done == (f"stack {OLD_STACK}",)
        return
    assert stopped.step == f"delete stack {other}" and stopped.not_done == (f"stack {OLD_STACK}", f"stack {other}")
    assert (f"InternalFailure) when calling the DeleteStack operation: try again later; before it, stack {OLD_STACK} "
            f"was not deleted: {why}") in str(stopped), stopped
    assert f"before it, stack {OLD_STACK} was not deleted: {why}" in text[:text.index("## Archive")], text


def test_an_old_image_kept_only_by_its_active_revision_says_how_to_let_it_go(account, repo):
    """Week 3: the services run the new version (1.0.0); the old version's revision is still
    ACTIVE, as a rollback may restore it, and that alone keeps its image. The refusal named the
    revision and nothing else: the person who came to delete the old image had no way forward."""
    aws = account
    ecs = aws.get_client("ecs")
    repository = ecs.describe_task_definition(taskDefinition=aws.targets.task_family)["taskDefinition"][
        "containerDefinitions"][0]["image"].rsplit(":", 1)[0]
    old = ecs.register_task_definition(
        family=aws.targets.task_family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc", cpu="256",
        memory="512", containerDefinitions=[{"name": aws.targets.container_name, "essential": True,
                                             "image": f"{repository}:old-version"}],
    )["taskDefinition"]["taskDefinitionArn"]
    revision = old.rsplit("/", 1)[-1]

    state = run(aws, repo, old_image_tags=["old-version"], archive_tag=None, archive_message="", repo_dir=None)

    (refusal,) = refusal_of(state).refusals
    assert "no service, running task or open rollout runs it" in refusal.reason, refusal.reason
    assert f"`aws ecs deregister-task-definition --task-definition {revision}`" in refusal.reason, refusal.reason
    assert "old-version" in tags(aws)

    # Done as it says, the next run deletes the old image.
    ecs.deregister_task_definition(taskDefinition=old)
    done = run(aws, repo, old_image_tags=["old-version"], archive_tag=None, archive_message="", repo_dir=None)
    assert done.is_completed(), done.message
    assert "old-version" not in tags(aws)


def test_the_log_line_saying_why_a_run_stopped_is_one_line_with_aws_words_escaped(account, caplog):
    """CloudFormation's reason quotes a custom resource's answer as it came, line breaks and colours
    and all: the summary wrote it on one line, escaped, but the run's log wrote it raw, its second
    line reading as a log line of its own and its escape sequence acting on the terminal."""
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account

    def refused(**_):
        raise ClientError({"Error": {"Code": "AccessDenied",
                                     "Message": "not today\n12:00:00 INFO cleanup done\x1b[2K"}}, "DeleteStack")

    @prefect_flow(name="cleanup-refused-with-a-line-break")
    def cleanup_refused():
        return run_cleanup(CleanupSpec(old_stacks=(OLD_STACK,)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("cloudformation"), "before-call", refused, operation="DeleteStack"):
        state = cleanup_refused(return_state=True)

    with pytest.raises(CleanupIncomplete):
        state.result()
    (said,) = [r.getMessage() for r in caplog.records if "cleanup stopped at" in r.getMessage()]
    assert "\n" not in said and "\x1b" not in said, repr(said)
    assert r"not today 12:00:00 INFO cleanup done\x1b[2K" in said, said  # as the summary writes it


def test_the_error_saying_why_a_run_stopped_is_one_bounded_line_with_aws_words_escaped(account, caplog):
    """The log line said CloudFormation's reason on one line, escaped, but the error itself (the
    run's state message, what the UI and `prefect flow-run inspect` show) carried it raw: a line
    break that began a line of its own, an escape sequence acting on the terminal, and all of a
    long answer (a custom resource's whole stack trace) where a reason belongs. The summary keeps
    it whole."""
    from rollway.cleanup import CleanupSpec

    aws = account
    trace = " at handler.js:1" * 2_000
    reason = f"The following resource(s) failed to delete: [Queue].\n12:00:00 INFO cleanup done\x1b[2K{trace}"
    with deletion_failed_before_its_turn(aws, reason):
        state, stopped = stopped_within(120, CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK,)),
                                        aws.targets, aws.get_client, CleanupIncomplete)

    for said in (str(stopped), state.message):
        assert "\n" not in said and "\x1b" not in said, repr(said[:400])
        assert r"[Queue]. 12:00:00 INFO cleanup done\x1b[2K at handler.js:1" in said, said[:400]
        assert len(said) < 3_000, len(said)
        assert "characters more in the run's artifact" in said, said[-400:]
        assert said.endswith("Run cleanup again with the same parameters once that step can succeed: what is gone "
                             "is reported as gone, and it carries on with the rest"), said[-400:]
    logged = [r.getMessage() for r in caplog.records
              if r.getMessage().startswith((f"stack {OLD_STACK} was not deleted", "cleanup stopped at"))]
    assert len(logged) == 2, [line[:200] for line in logged]  # the stack kept, then the run stopped
    for line in logged:
        assert "\n" not in line and "\x1b" not in line and len(line) < 3_000, line[:400]
        assert "characters more in the run's artifact" in line, line[-400:]
    assert trace in summary(state), "the summary keeps the whole of CloudFormation's reason"


def test_the_log_line_saying_why_a_planned_stack_was_kept_is_one_line_with_aws_words_escaped(account, caplog):
    """CloudFormation's reason for a failed deletion quotes a custom resource's answer as it came:
    the warning saying why the stack was kept wrote it raw, its second line reading as a log line
    of its own ("cleanup done") and its escape sequence acting on the terminal."""
    from rollway.cleanup import CleanupSpec

    aws = account
    reason = "The following resource(s) failed to delete: [Queue].\n12:00:00 INFO cleanup done\x1b[2K"
    with deletion_failed_before_its_turn(aws, reason):
        stopped_within(120, CleanupSpec(old_image_tags=("0.9.0",), old_stacks=(OLD_STACK,)), aws.targets,
                       aws.get_client, CleanupIncomplete)

    assert stack_status(aws, OLD_STACK) == "CREATE_COMPLETE", "not deleted"
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"stack {OLD_STACK} was not deleted")]
    assert "\n" not in said and "\x1b" not in said, repr(said)
    assert r"[Queue]. 12:00:00 INFO cleanup done\x1b[2K" in said, said  # as the summary writes it


@pytest.mark.parametrize("service, operation", [("ecs", "DescribeServices"), ("ecs", "ListTasks"),
                                                ("ecs", "DescribeTaskDefinition"), ("dynamodb", "Query")])
def test_a_read_of_what_production_runs_throttled_once_is_read_again_and_the_run_goes_on(account, service, operation):
    # Throttled past botocore's own retries, the read of what production runs failed the run at
    # once ("could not be read (check the targets block)": the names were right), where the
    # repository's and the stacks' reads throttled alike were asked again and went on.
    from prefect import flow

    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    asked: list[str] = []

    def throttled_once(**_):
        asked.append(operation)
        if len(asked) == 1:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)

    @flow(name="cleanup-throttled-read")
    def cleanup_throttled_read():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version",)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, service), "before-parameter-build", throttled_once, operation=operation):
        state = cleanup_throttled_read(return_state=True)

    assert state.is_completed(), state.message
    assert len(asked) > 1, "read again after the throttle"
    assert state.result().deleted_tags == ("old-version",)
    assert tags(aws) == {"1.0.0", "0.9.0"}


def throttled(operation: str) -> ClientError:
    return ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)


def unreachable(_operation: str) -> EndpointConnectionError:
    return EndpointConnectionError(endpoint_url="https://ecs.us-west-2.amazonaws.com/")


@pytest.mark.parametrize("service, operation, failure, said", [
    ("ecs", "DescribeServices", throttled, "ThrottlingException on DescribeServices: Rate exceeded"),
    ("dynamodb", "Query", throttled, "ThrottlingException on Query: Rate exceeded"),
    # Not an InUseUnknown: raised as botocore raised it, and tried again by every rule but a refusal's.
    ("ecs", "DescribeServices", unreachable, "Could not connect to the endpoint URL")])
def test_a_read_of_what_production_runs_failing_before_the_first_batch_is_asked_three_times_in_all(
        account, monkeypatch, service, operation, failure, said):
    # The read before each batch is a task of its own, tried three times; the deletion's task,
    # retried as a whole on the reads' rule, tried it again from each of its three tries: throttled
    # for good, the read was asked nine times, the run held for a minute or more, nothing deleted.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation
    import tasks.cleanup

    aws = account
    asked: list[str] = []

    def throttled_after_the_plan(**_):
        asked.append(operation)
        if len(asked) > 1:  # the plan's read is answered
            raise failure(operation)

    for name in ("delete_tags", "images_in_use", "open_rollout_needs"):  # their rules, without the waits
        monkeypatch.setattr(tasks.cleanup, name, getattr(tasks.cleanup, name).with_options(retry_delay_seconds=0))

    @prefect_flow(name="cleanup-throttled-before-the-first-batch")
    def cleanup_throttled_before_the_first_batch():
        return run_cleanup(CleanupSpec(old_image_tags=("old-version",)), aws.targets, aws.get_client)

    with on_operation(read_client(aws, service), "before-parameter-build", throttled_after_the_plan,
                      operation=operation):
        state = cleanup_throttled_before_the_first_batch(return_state=True)

    assert len(asked) == 1 + 3, f"{operation} asked {len(asked) - 1} time(s) after the plan"
    with pytest.raises(CleanupIncomplete, match=said):
        state.result()
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"}, "nothing deleted"


def test_a_tag_pushed_again_while_an_earlier_batch_is_deleted_is_not_deleted(account):
    # The repository was read again once, before the first batch of 100: a tag of a later batch
    # that CI pushed again meanwhile was deleted by its name, and the new image it named, which
    # nothing had judged, went with it.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    old = [f"build-{n:03d}" for n in range(101)]
    (judged,) = {put_image(aws, tag, "5") for tag in old}
    pushed: list[str] = []

    def push_again_after_the_first_batch(**_):
        if not pushed:
            pushed.append(put_image(aws, "build-100", "9"))

    @prefect_flow(name="cleanup-tag-moved-between-batches")
    def cleanup_tag_moved_between_batches():
        return run_cleanup(CleanupSpec(old_image_tags=tuple(old)), aws.targets, aws.get_client)

    with on_operation(aws.get_client("ecr"), "after-call", push_again_after_the_first_batch,
                      operation="BatchDeleteImage"):
        state = cleanup_tag_moved_between_batches(return_state=True)

    (new,) = pushed
    assert digests(aws).get("build-100") == new, "the image pushed under build-100 after the plan is still there"
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0", "build-100"}
    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    message = str(stopped.value)
    assert f"build-100 named {judged}, now {new}" in message, message
    assert "in use" not in message, message
    assert stopped.value.not_done == ("image tag build-100",)
    assert len(stopped.value.done) == 100


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("asked", [dict(old_image_tags=("old-version", "latest")),
                                   dict(old_stacks=(OLD_STACK, "LIVE"))])
def test_latest_or_a_live_stack_is_refused_before_any_call_to_aws(account, caplog, asked, dry_run):
    # Known from the input alone, they were refused only at the plan, after every read of the
    # repository, the stacks and what production runs (a minute on a big cluster, or a throttle
    # or a refused read failing the run with another error than the input's).
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec

    aws = account
    live = aws.targets.stacks[4]
    spec = CleanupSpec(dry_run=dry_run, **{key: tuple(live if name == "LIVE" else name for name in names)
                                           for key, names in asked.items()})
    clients: list[str] = []

    def no_aws(service: str):
        clients.append(service)
        return aws.get_client(service)

    @prefect_flow(name="cleanup-refused-from-the-input")
    def cleanup_refused_from_the_input():
        return run_cleanup(spec, aws.targets, no_aws)

    state = cleanup_refused_from_the_input(return_state=True)

    refused = refusal_of(state)
    assert clients == [], "no AWS client made, let alone a call"
    (refusal,) = refused.refusals
    assert (refusal.kind, refusal.name) == (("image tag", "latest") if "old_image_tags" in asked else ("stack", live))
    assert f"refused: {refusal}" in caplog.text
    assert tags(aws) == {"1.0.0", "old-version", "0.9.0"} and stack_status(aws, live) == "CREATE_COMPLETE"
    text = summary(state)
    assert text.startswith("# Cleanup stopped before anything was written"), text
    assert refusal.reason in text and "Nothing was archived or deleted" in text, text


def test_an_image_coming_into_use_while_another_of_its_tags_is_pushed_again_is_not_said_to_have_lost_that_tag(
        account):
    # Between two batches, one tag of an old image was pushed again (kept: it names another image
    # now) and the image came into use under its other tag: the run said the first tag "went in
    # an earlier batch", though ECR still has it, and none of the image's tags was deleted.
    from flows.cleanup import run_cleanup
    from rollway.cleanup import CleanupSpec
    from tests.botocore_events import on_operation

    aws = account
    first = [f"build-{n:03d}" for n in range(100)]
    for tag in first:
        put_image(aws, tag, "5")
    put_image(aws, "build-100", "6")
    judged = put_image(aws, "build-101", "6")
    changed: list[str] = []

    def after_the_first_batch(**_):
        if not changed:
            changed.append(put_image(aws, "build-100", "9"))
            changed.append(start_using(aws, "revision", "build-101"))

    @prefect_flow(name="cleanup-pushed-again-and-in-use")
    def cleanup_pushed_again_and_in_use():
        return run_cleanup(CleanupSpec(old_image_tags=(*first, "build-100", "build-101")), aws.targets, aws.get_client)

    with on_operation(aws.get_client("ecr"), "after-call", after_the_first_batch, operation="BatchDeleteImage"):
        state = cleanup_pushed_again_and_in_use(return_state=True)

    with pytest.raises(CleanupIncomplete) as stopped:
        state.result()
    message = str(stopped.value)
    assert f"image tag(s) build-101: image {judged} came into use after the plan" in message, message
    assert "none of its tags was deleted" in message and "went in an earlier batch" not in message, message
    assert {"build-100", "build-101"} <= tags(aws)
