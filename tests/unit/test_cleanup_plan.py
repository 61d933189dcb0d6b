"""plan_cleanup and CleanupSpec: what cleanup deletes and what it refuses, table-driven (pure)."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from rollway.cleanup import (
    ArchiveState, CleanupResult, CleanupSpec, Holding, ImageUse, RepositoryImage, StackState, check_git_tag_name,
    describe_archive,
    in_use_summary, mounted_by, parse_image, plan_cleanup, planned_result, Refusal, summary_markdown,
)
from rollway.targets import Targets

T = Targets()
REPO = f"123456789012.dkr.ecr.us-west-2.amazonaws.com/{T.ecr_repository}"
D_OLD, D_CUR, D_PREV, D_PINNED = (f"sha256:{c * 64}" for c in "abcd")
IMAGES = (
    RepositoryImage(digest=D_OLD, tags=("old-version", "0.9.0")),
    RepositoryImage(digest=D_CUR, tags=("2.0.0", "release")),  # the stable service runs 2.0.0
    RepositoryImage(digest=D_PREV, tags=("1.0.0",)),  # an ACTIVE revision (rollback target) runs it
    RepositoryImage(digest=D_PINNED, tags=("pinned-alias",)),  # a revision pins it by digest
    RepositoryImage(digest="sha256:" + "e" * 64, tags=("latest",)),
)
IN_USE = (
    ImageUse(task_definition="arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:3",
             why="the stable service deploys it", image=f"{REPO}:2.0.0"),
    ImageUse(task_definition="arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:2",
             why="an ACTIVE revision", image=f"{REPO}:1.0.0"),
    ImageUse(task_definition="arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:1",
             why="an ACTIVE revision", image=f"{REPO}@{D_PINNED}"),
    # A sidecar from another repository: its tag is not this repository's.
    ImageUse(task_definition="arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:3",
             why="the stable service deploys it", image="public.ecr.aws/aws-observability/aws-otel-collector:0.9.0"),
)


def plan(tags=(), stacks=(), described=None, **spec):
    spec = CleanupSpec(old_image_tags=tags, old_stacks=stacks, **spec)
    return plan_cleanup(spec, T, stacks=described or {}, in_use=IN_USE, images=IMAGES,
                        archive=spec.archive_tag and ArchiveState(commit="c1"))


@pytest.mark.parametrize(
    "tag, outcome, reason",
    [
        ("old-version", "delete", None),
        ("0.9.0", "delete", None),  # the sidecar's 0.9.0 is another repository's
        ("gone-already", "gone", None),
        ("2.0.0", "refused", "webordinary-edit-task:3 (the stable service deploys it) runs"),
        ("release", "refused", f"it tags image {D_CUR}, which is in use"),  # same image as 2.0.0
        ("1.0.0", "refused", "webordinary-edit-task:2 (an ACTIVE revision)"),
        ("pinned-alias", "refused", "webordinary-edit-task:1 (an ACTIVE revision) pins it by digest"),
        ("latest", "refused", "'latest' is what an image reference without a tag pulls"),
    ],
)
def test_image_tags(tag, outcome, reason):
    p = plan(tags=(tag,))
    got = "delete" if tag in p.delete_tags else "gone" if tag in p.gone_tags else "refused"
    assert got == outcome
    if reason:
        (refusal,) = p.refusals
        assert refusal.kind == "image tag" and refusal.name == tag and reason in refusal.reason


def test_an_untagged_reference_uses_latest_and_a_tag_with_a_digest_keeps_both():
    uses = (ImageUse(task_definition="td:1", why="x", image=T.ecr_repository),
            ImageUse(task_definition="td:2", why="y", image=f"{REPO}:old-version@{D_PREV}"))
    spec = CleanupSpec(old_image_tags=("old-version", "1.0.0", "latest"))
    p = plan_cleanup(spec, T, stacks={}, in_use=uses, images=IMAGES)
    assert {r.name for r in p.refusals} == {"old-version", "1.0.0", "latest"}
    assert not p.delete_tags


def test_every_refusal_is_listed_not_only_the_first():
    p = plan(tags=("2.0.0", "old-version", "latest"), stacks=("WebordinaryALBStack", "webordinary-old-stack"),
             described={"webordinary-old-stack": StackState(name="webordinary-old-stack", status="CREATE_COMPLETE")})
    assert [(r.kind, r.name) for r in p.refusals] == [
        ("image tag", "2.0.0"), ("image tag", "latest"), ("stack", "WebordinaryALBStack")]
    assert p.refused and p.delete_tags == ("old-version",) and p.delete_stacks == ("webordinary-old-stack",)


OLD = "webordinary-old-stack"


@pytest.mark.parametrize(
    "name, state, outcome, reason",
    [
        (OLD, StackState(name=OLD, status="UPDATE_COMPLETE"), "delete", None),
        (OLD, StackState(name=OLD, status="DELETE_FAILED"), "delete", None),  # retried
        # A run stopped while CloudFormation deleted it: it waits for that deletion again.
        (OLD, StackState(name=OLD, status="DELETE_IN_PROGRESS"), "delete", None),
        (OLD, StackState(name=OLD, status="REVIEW_IN_PROGRESS"), "delete", None),  # a change set never executed
        # Mid-change, DeleteStack refuses it: said at the plan, not after the image tags went.
        (OLD, StackState(name=OLD, status="UPDATE_IN_PROGRESS"), "refused",
         "it is UPDATE_IN_PROGRESS: CloudFormation is changing it right now"),
        (OLD, StackState(name=OLD, status="UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"), "refused",
         "does not delete a stack mid-change; run cleanup again once it has settled"),
        (OLD, StackState(name=OLD, status="CREATE_IN_PROGRESS"), "refused", "it is CREATE_IN_PROGRESS"),
        # No record of it, live or deleted: a misspelling (the real old stack still there, costing
        # money) was reported "not found" in a run that ended Completed.
        (OLD, None, "refused", "CloudFormation has no stack of that name in us-west-2, live or deleted in the last "
                               "90 days"),
        (OLD, StackState(name=OLD, similar=("webordinary-old-stacks", "Webordinary-Old-Stack")), "refused",
         "is it one of the live stacks webordinary-old-stacks, Webordinary-Old-Stack? If it was deleted more than 90 "
         "days ago, leave it out of old_stacks"),
        # A misspelling of a live stack of the targets (never offered as a stack to delete): "no
        # live stack has a close name (is the region right?)" sent a person to check the region.
        ("WebordinaryFargateStac", StackState(name="WebordinaryFargateStac"), "refused",
         "no live stack in us-west-2 but the targets' own WebordinaryFargateStack (Targets.stacks: production runs "
         "on it) has a close name."),
        # Deleted before (by an earlier run, or by hand): nothing to do.
        (OLD, StackState(name=OLD, status="DELETE_COMPLETE"), "gone", None),
        ("WebordinaryFargateStack", StackState(name="WebordinaryFargateStack", status="CREATE_COMPLETE"), "refused",
         "it is the live stack 'WebordinaryFargateStack'"),
        ("webordinaryfargatestack", None, "refused", "it is the live stack 'WebordinaryFargateStack'"),
        ("Nested-1", StackState(name="Nested-1", status="CREATE_COMPLETE", root_stack="WebordinarySQSStack"),
         "refused", "nested in the live stack 'WebordinarySQSStack'"),
        # Nested in an old stack that stays: deleted alone, its root would name a stack that is gone.
        ("Old-Nested-1", StackState(name="Old-Nested-1", status="CREATE_COMPLETE", root_stack=OLD), "refused",
         f"it is nested in stack '{OLD}', which is not being deleted"),
        (OLD, StackState(name=OLD, status="CREATE_COMPLETE", termination_protection=True), "refused",
         "--no-enable-termination-protection --stack-name webordinary-old-stack"),
        # An importer that is another old stack: delete it first. A live one: the advice to delete
        # it first sent a person to delete production.
        (OLD, StackState(name=OLD, status="CREATE_COMPLETE", imported_by={"q-arn": ("older-reader",)}), "refused",
         "delete those stacks first (or list them before webordinary-old-stack in old_stacks)"),
        (OLD, StackState(name=OLD, status="CREATE_COMPLETE", imported_by={"q-arn": ("WebordinarySQSStack",)}),
         "refused", "the live stack(s) WebordinarySQSStack (Targets.stacks) depend on it: production runs on them"),
    ],
)
def test_stacks(name, state, outcome, reason):
    p = plan(stacks=(name,), described={name: state} if state else {})
    got = "delete" if name in p.delete_stacks else "gone" if name in p.gone_stacks else "refused"
    assert got == outcome
    if reason:
        (refusal,) = p.refusals
        assert refusal.kind == "stack" and reason in refusal.reason
        assert "WebordinarySQSStack" not in reason or "delete those stacks" not in refusal.reason, refusal.reason


def test_a_nested_stack_is_deleted_with_its_root_listed_beside_it():
    nested = StackState(name="Old-Nested-1", status="CREATE_COMPLETE", root_stack=OLD)
    p = plan(stacks=(OLD, "Old-Nested-1"), described={OLD: StackState(name=OLD, status="CREATE_COMPLETE"),
                                                       "Old-Nested-1": nested})
    assert p.delete_stacks == (OLD, "Old-Nested-1") and not p.refusals


def test_live_stacks_come_from_the_targets_not_from_webordinarys_names():
    mine = Targets(stacks=("ShopStack",))
    spec = CleanupSpec(old_stacks=("ShopStack", "WebordinaryALBStack"))
    p = plan_cleanup(spec, mine, stacks={n: StackState(name=n, status="CREATE_COMPLETE") for n in spec.old_stacks},
                     in_use=(), images=())
    assert [r.name for r in p.refusals] == ["ShopStack"] and p.delete_stacks == ("WebordinaryALBStack",)


ARCHIVE = dict(archive_tag="pre-sqs-architecture", archive_message="Archive before SQS migration", repo_dir="/r")


@pytest.mark.parametrize(
    "state, push, exists, pushed, reason",
    [
        (ArchiveState(commit="c1"), True, False, False, None),
        (ArchiveState(commit="c1", local_commit="c1", remote_commit="c1"), True, True, True, None),
        (ArchiveState(commit="c1", local_commit="c1"), False, True, False, None),
        (ArchiveState(commit="c1", local_commit="c0"), True, None, None, "exists already on commit c0, not on c1"),
        (ArchiveState(commit="c1", local_commit="c1", local_annotated=False), True, None, None, "lightweight"),
        (ArchiveState(commit="c1", remote_commit="c0"), True, None, None, "remote 'origin' has the tag already on"),
        (ArchiveState(commit="c1", remote_commit="c0"), False, False, False, None),  # not pushed: not asked
    ],
)
def test_archive(state, push, exists, pushed, reason):
    spec = CleanupSpec(**ARCHIVE, push=push)
    p = plan_cleanup(spec, T, stacks={}, in_use=(), images=(), archive=state)
    if reason:
        (refusal,) = p.refusals
        assert refusal.kind == "archive tag" and reason in refusal.reason
    else:
        assert not p.refusals
        assert (p.archive.exists, p.archive.pushed, p.archive.push_to) == (exists, pushed, "origin" if push else None)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({}, "nothing to clean up"),
        ({"old_stacks": ["9bad"]}, "is not a CloudFormation stack name"),
        ({"old_stacks": ["a_b"]}, "is not a CloudFormation stack name"),
        ({"old_stacks": ["old", "old"]}, "stacks named more than once: old"),
        ({"old_image_tags": ["-x"]}, "is not an image tag"),
        ({"old_image_tags": ["a b"]}, "is not an image tag"),
        ({"old_image_tags": ["x" * 129]}, "is not an image tag"),
        ({**ARCHIVE, "archive_tag": "a..b"}, "contains '..'"),
        ({**ARCHIVE, "archive_tag": "pre sqs"}, "contains ' '"),
        ({**ARCHIVE, "archive_tag": "-f"}, "starts with '-'"),
        ({**ARCHIVE, "archive_message": "  "}, "archive_message must say why"),
        ({**ARCHIVE, "repo_dir": None}, "repo_dir must name the git checkout"),
        ({**ARCHIVE, "archive_commit": "--upload-pack=x"}, "is not a usable git revision"),
        ({**ARCHIVE, "remote": "-o"}, "is not a usable git remote"),
        ({**ARCHIVE, "remote": "https://bot:ghp_token@github.com/webordinary/app.git"}, "credentials in it"),
        ({"old_stacks": ["old"], "archive_commit": "HEAD"}, "need archive_tag"),
        ({"old_stacks": ["old"], "stacks": ["typo"]}, "Extra inputs are not permitted"),
    ],
)
def test_bad_specs_are_refused_at_construction(fields, message):
    with pytest.raises(ValidationError, match=message) as refused:
        CleanupSpec(**fields)
    assert "ghp_token" not in str(refused.value)


@pytest.mark.parametrize(
    "reference, meant",
    [("webordinary/edit-container:old-version", "old-version"),
     (f"{REPO}:0.9.0", "0.9.0"),
     ("localhost:5000/edit-container:build-7", "build-7"),
     (f"{REPO}:0.9.0@{D_OLD}", "0.9.0")],
)
def test_an_image_reference_given_as_a_tag_is_refused_naming_the_tag_it_meant(reference, meant):
    # Copied from a task definition or `docker images`: refused, since cleanup deletes tags of the
    # targets' repository only, but told to give the tag alone, and which one.
    with pytest.raises(ValidationError) as refused:
        CleanupSpec(old_image_tags=("old-version", reference))
    said = str(refused.value)
    assert f"{reference!r} is an image reference, not a tag" in said, said
    assert f"give only its tag, {meant!r}" in said, said


def test_an_image_reference_by_digest_given_as_a_tag_is_refused_saying_to_give_its_tags():
    with pytest.raises(ValidationError) as refused:
        CleanupSpec(old_image_tags=(f"{REPO}@{D_OLD}",))
    said = str(refused.value)
    assert "is an image reference by digest, not a tag" in said and "give the image's tags" in said, said


@pytest.mark.parametrize("remote", ["origin", "git@github.com:webordinary/app.git", "ssh://git@host/app.git",
                                    "https://github.com/webordinary/app.git", "/srv/git/app.git"])
def test_remotes_without_credentials_are_taken(remote):
    assert CleanupSpec(**ARCHIVE, remote=remote).remote == remote


@pytest.mark.parametrize(
    "name, why",
    [("", "empty"), ("a/", "empty component"), ("/a", "empty component"), ("a//b", "empty component"),
     (".a", "starts with '.'"), ("a/.b", "starts with '.'"), ("a.lock", "ends with '.lock'"), ("a.", "ends with '.'"),
     ("a@{b", "'@{'"), ("@", "ambiguous"), ("a~1", "'~'"), ("a^", "'^'"), ("a:b", "':'"), ("a?", "'?'"), ("a*", "'*'"),
     ("a[b", "'['"), ("a\\b", "'\\\\'"), ("a\tb", "'\\t'"), ("a\x7fb", "'\\x7f'"), ("HEAD", "ambiguous")],
)
def test_git_tag_names_git_refuses(name, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        check_git_tag_name(name)


@pytest.mark.parametrize("name", ["pre-sqs-architecture", "v1.0.0", "archive/2026-11", "a@b", "über", "a.b.c"])
def test_git_tag_names_git_accepts(name):
    assert check_git_tag_name(name) == name


@pytest.mark.parametrize(
    "image, repository, tag, digest",
    [
        (f"{REPO}:2.0.0", T.ecr_repository, "2.0.0", None),
        (f"{REPO}@{D_OLD}", T.ecr_repository, None, D_OLD),
        (f"{REPO}:t@{D_OLD}", T.ecr_repository, "t", D_OLD),
        ("localhost:5000/webordinary/edit-container", T.ecr_repository, None, None),
        ("nginx:1.25", "nginx", "1.25", None),
    ],
)
def test_parse_image(image, repository, tag, digest):
    ref = parse_image(image)
    assert (ref.repository, ref.tag, ref.digest) == (repository, tag, digest)


def test_summary_says_what_was_deleted_gone_and_refused():
    text = summary_markdown(CleanupResult(deleted_tags=("old-version",), gone_tags=("x",), deleted_stacks=(OLD,),
                                          gone_stacks=("older-stack",), archived="tag `t` -> c1: created"),
                            T.ecr_repository)
    assert text.startswith("# Cleanup done")
    assert "- `old-version`" in text and "- image tag `x`" in text and f"- `{OLD}`" in text and "created" in text
    # A stack CloudFormation lists as deleted was deleted: not "deleted before, or never there".
    assert "## Already deleted: stacks CloudFormation lists as DELETE_COMPLETE (by an earlier run, or by hand)\n\n" \
           "- `older-stack`\n" in text, text
    assert "stack `older-stack`" not in text[text.index("## Not found"):]
    p = plan(tags=("2.0.0",))
    refused = summary_markdown(planned_result(p), T.ecr_repository)
    assert refused.startswith("# Cleanup refused: nothing was deleted") and "image tag `2.0.0`" in refused



def test_summary_shows_the_control_characters_of_what_it_quotes_escaped():
    """The summary quotes AWS's words: CloudFormation's reason for a failed deletion quotes a custom
    resource's Lambda as it answered (coloured log lines, line breaks). Written as they came, the
    escape sequences left stray "[31m"s around invisible characters in the Prefect UI, and a line
    break opening "# " began a heading of its own ("Cleanup done", under "Cleanup refused")."""
    hook = "remote: \x1b[31mtag refused by policy\x1b[0m\n# Cleanup done"
    text = summary_markdown(CleanupResult(
        stopped=f"while it tried to push the archive tag t to origin: GitError: {hook}", not_done=("push tag t",),
        stacks_kept={OLD: "DELETE_FAILED since the plan: \x1b[2Kthe role was deleted\n## Deleted"},
        refusals=(Refusal(kind="stack", name="other-stack", reason="UPDATE_IN_PROGRESS: \x07\n- Deleted: all"),)),
        T.ecr_repository)
    assert "\x1b" not in text and "\x07" not in text, text
    assert r"\x1b[31mtag refused by policy\x1b[0m" in text and r"\x1b[2Kthe role was deleted" in text, text
    assert r"UPDATE_IN_PROGRESS: \x07" in text, text
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[0] == "# Cleanup refused: nothing was deleted" and "# Cleanup done" not in headings, headings
    assert "## Deleted" not in headings and "- Deleted: all" not in text.splitlines(), text

A = "arn:aws:{}:us-west-2:123456789012:{}"


@pytest.mark.parametrize(
    ("resource", "held"),
    [
        # Real holds: each production resource as CloudFormation names it (and its ARN).
        (A.format("ecs", "service/webordinary-edit-cluster/webordinary-edit-service"),
         "webordinary-edit-service (Targets.stable_service, the stable service)"),
        (A.format("ecs", "service/webordinary-edit-service-canary"),  # the old ARN form, no cluster
         "webordinary-edit-service-canary (Targets.canary_service"),
        ("webordinary-edit-cluster", "webordinary-edit-cluster (Targets.cluster"),
        (A.format("ecs", "cluster/webordinary-edit-cluster"), "webordinary-edit-cluster (Targets.cluster"),
        (A.format("elasticloadbalancing", "loadbalancer/app/webordinary-edit-alb/50dc6c495c0c9188"),
         "webordinary-edit-alb (Targets.load_balancer"),
        (A.format("elasticloadbalancing", "targetgroup/webordinary-edit-canary/73e2d6bc24d8a067"),
         "webordinary-edit-canary (Targets.canary_target_group"),
        ("https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input-dlq", "webordinary-edit-input-dlq (a dead-letter"),
        (A.format("sqs", "webordinary-edit-input"), "webordinary-edit-input (a queue in Targets.queues)"),
        ("webordinary-feature-flags", "webordinary-feature-flags (Targets.flags_table"),
        (A.format("dynamodb", "table/webordinary-rollouts"), "webordinary-rollouts (Targets.rollouts_table"),
        (A.format("sns", "webordinary-alerts"), "webordinary-alerts (Targets.alert_topic"),
        (A.format("cloudwatch", "alarm:webordinary-edit-dlq-messages"), "webordinary-edit-dlq-messages (an alarm"),
        ("webordinary-edit-dashboard", "webordinary-edit-dashboard (Targets.dashboard"),
        ("webordinary/edit-container", "webordinary/edit-container (Targets.ecr_repository"),
        (A.format("ecr", "repository/webordinary/edit-container"), "webordinary/edit-container (Targets.ecr_repository"),
        # Names that only begin like a production one are not it.
        (A.format("ecs", "service/webordinary-old-cluster/webordinary-edit-service-old"), None),
        ("webordinary-edit-input-old", None),
        # Resources whose id merely contains a production name are other resources.
        (A.format("ecs", "service/webordinary-old-cluster/webordinary-edit-service"), None),  # another cluster's
        ("/ecs/webordinary-edit-service", None),  # a log group
        (A.format("iam", "role/webordinary-edit-cluster").replace("us-west-2", ""), None),
        (A.format("elasticloadbalancing", "listener/app/webordinary-edit-alb/50dc6c495c0c9188/f2f7dc8efc522ab2"),
         None),
        ("https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input-old", None),
        (A.format("dynamodb", "table/webordinary-rollouts/stream/2026-11-30T00:00:00.000"), None),
        (A.format("sns", "webordinary-alerts:0f6a0d6e-3c4f-4b43-9b86-1f0c51a0e4c1"), None),  # a subscription
        ("webordinary-edit-cluster/webordinary-edit-service", None),
    ],
)
def test_a_stack_holding_a_production_resource_is_refused(resource, held):
    state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(resource,))
    plan = plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), Targets(),
                        stacks={"webordinary-old-stack": state}, in_use=(), images=())
    if held is None:
        assert plan.delete_stacks == ("webordinary-old-stack",) and not plan.refusals
    else:
        # No type read: a bare name may be production's resource of that name, or configure it, or not.
        if not resource.startswith(("arn:", "https:")):
            held = f"{resource}, a resource of no known type, which may be or configure {held}"
        (refusal,) = plan.refusals
        assert f"it holds {held}" in refusal.reason, refusal.reason


def test_a_stack_whose_deletion_policy_keeps_what_production_uses_is_deleted_and_keeps_it():
    # The migration's old stack made the table the new service reads, with DeletionPolicy Retain:
    # deleting the stack leaves the table. The other queue it holds is production's and not kept.
    table, queue = "webordinary-rollouts", "https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input"
    kept = StackState(name=OLD, status="CREATE_COMPLETE", resources=(table, "old-bucket"), retained=(table,))
    plan = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), T, stacks={OLD: kept}, in_use=(), images=())
    assert plan.delete_stacks == (OLD,) and not plan.refusals and plan.stack_retained == {OLD: (table,)}

    not_kept = kept.model_copy(update={"resources": (table, queue)})
    (refusal,) = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), T, stacks={OLD: not_kept}, in_use=(), images=()).refusals
    assert "it holds webordinary-edit-input (a queue in Targets.queues)" in refusal.reason
    assert "webordinary-rollouts" not in refusal.reason


def test_a_rerun_after_head_moved_is_told_how_to_carry_on():
    # Run 1 tagged HEAD (c0) and stopped at a stack; the checkout has moved on to c1 since. The
    # run's own error said "run cleanup again with the same parameters": the refusal must say how.
    spec = CleanupSpec(**ARCHIVE)
    refusals = plan_cleanup(spec, T, stacks={}, in_use=(), images=(),
                            archive=ArchiveState(commit="c1", local_commit="c0", remote_commit="c0")).refusals
    assert len(refusals) == 2  # the local tag and the remote's
    assert all("archive_commit c0" in r.reason and "earlier cleanup run" in r.reason for r in refusals)
    pinned = CleanupSpec(**ARCHIVE, archive_commit="c1")
    (refusal,) = plan_cleanup(pinned, T, stacks={}, in_use=(), images=(),
                              archive=ArchiveState(commit="c1", local_commit="c0")).refusals
    assert "earlier cleanup run" not in refusal.reason  # the person named the commit: no guess


def test_a_big_clusters_uses_are_counted_in_the_log_and_refusals_and_listed_in_full_in_the_artifact():
    # 200 ACTIVE revisions, every one running 2.0.0 (or pinning its digest): a rollback may restore any.
    uses = tuple(ImageUse(task_definition=f"arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:{n}",
                          why="an ACTIVE revision", image=f"{REPO}:2.0.0" if n % 2 else f"{REPO}@{D_CUR}")
                 for n in range(1, 201))
    planned = plan_cleanup(CleanupSpec(old_image_tags=("2.0.0", "release")), T, stacks={}, in_use=uses,
                           images=IMAGES)
    by_tag = {r.name: r.reason for r in planned.refusals}
    assert by_tag["2.0.0"].startswith("in use: task definition webordinary-edit-task:1 (an ACTIVE revision) runs")
    assert by_tag["2.0.0"].count("task definition") == 3 and "; and 97 more (every one under In use" in by_tag["2.0.0"]
    assert by_tag["release"].count("task definition") == 3 and "; and 197 more" in by_tag["release"]
    line = in_use_summary(uses)
    assert line.startswith("200 task definition(s) in use, running 2 distinct image(s): task definition "
                           "webordinary-edit-task:1 (an ACTIVE revision) runs")
    assert line.count("task definition webordinary-edit-task:") == 3 and line.endswith(
        "; and 197 more (every one under In use in the run's artifact)")
    text = summary_markdown(planned_result(planned), T.ecr_repository)
    assert "## In use: 200 task definition(s), whose images are kept" in text
    assert all(f"- task definition webordinary-edit-task:{n} (an ACTIVE revision) runs" in text for n in range(1, 201))


def test_a_few_uses_are_named_in_full():
    assert in_use_summary(IN_USE[:2]) == (
        "2 task definition(s) in use, running 2 distinct image(s): task definition webordinary-edit-task:3 "
        f"(the stable service deploys it) runs {REPO}:2.0.0; task definition webordinary-edit-task:2 "
        f"(an ACTIVE revision) runs {REPO}:1.0.0")
    assert in_use_summary(()) == "no task definition in use"


def test_a_stack_holding_a_task_definition_in_use_is_refused_and_one_no_longer_in_use_is_not():
    # Deleting a stack deregisters the revisions it registered: ECS then refuses to point a
    # service back at one (the rollback's restore of an ACTIVE revision).
    arn = "arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:{}"
    spec = CleanupSpec(old_stacks=("webordinary-old-stack",))
    for revision, refused in ((2, True), (7, False)):
        state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(arn.format(revision),))
        planned = plan_cleanup(spec, T, stacks={"webordinary-old-stack": state}, in_use=IN_USE, images=IMAGES)
        if refused:
            (refusal,) = planned.refusals
            assert "it holds task definition webordinary-edit-task:2 (an ACTIVE revision)" in refusal.reason
        else:
            assert planned.delete_stacks == ("webordinary-old-stack",) and not planned.refusals


def old_stack_plan(resource: str, *, in_use=(), routing=None, kind: str | None = None):
    """The plan of a run deleting webordinary-old-stack, which holds ``resource`` (``kind``: its resource type;
    None: not known)."""
    state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(resource,),
                       holdings=(Holding(type=kind),) if kind else ())
    return plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), T, stacks={"webordinary-old-stack": state},
                        in_use=in_use, images=IMAGES, routing=routing)


def assert_holds(planned, held: str | None, uses: str = "runs on it") -> None:
    """``held`` None: the stack is to be deleted; otherwise refused, saying it holds ``held`` and that
    production ``uses`` it."""
    if held is None:
        assert planned.delete_stacks == ("webordinary-old-stack",) and not planned.refusals
    else:
        (refusal,) = planned.refusals
        assert f"it holds {held}" in refusal.reason and f"production {uses}" in refusal.reason, refusal.reason


@pytest.mark.parametrize("resource, held", [
    ("webordinary-edit-task-execution",
     "webordinary-edit-task-execution (the task execution role of task definition webordinary-edit-task:2, an "
     "ACTIVE revision)"),
    ("webordinary-edit-task-role",
     "webordinary-edit-task-role (the task role of task definition webordinary-edit-task:2, an ACTIVE revision)"),
    ("/ecs/webordinary-edit-task",
     "/ecs/webordinary-edit-task (the log group of task definition webordinary-edit-task:2, an ACTIVE revision)"),
    ("webordinary-old-task-execution", None),  # a role no revision in use runs with
    ("/ecs/webordinary-old-task", None),
])
def test_a_stack_holding_the_role_or_log_group_of_a_task_definition_in_use_is_refused(resource, held):
    # The old stack made the execution role and log group the revisions in use still name:
    # deleted with it, no task of those revisions could start again (no image pull, no logs).
    role = "arn:aws:iam::1:role/{}"
    uses = (IN_USE[1].model_copy(update={"execution_role": role.format("webordinary-edit-task-execution"),
                                         "task_role": role.format("service-role/webordinary-edit-task-role"),
                                         "log_group": "/ecs/webordinary-edit-task"}),)
    kind = "AWS::Logs::LogGroup" if resource.startswith("/ecs/") else "AWS::IAM::Role"
    assert_holds(old_stack_plan(resource, in_use=uses, kind=kind), held)


SHARED_ROLE, SHARED_LOG_GROUP, SHARED_SECRET = "webordinary-shared-role", "/ecs/webordinary-shared", "webordinary-key"


def sharing(revisions: int, **use) -> tuple[ImageUse, ...]:
    """``revisions`` task definitions in use, webordinary-edit-task:N down to 1, each with ``use``."""
    return tuple(ImageUse(task_definition=f"arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:{n}",
                          why="the stable service deploys it" if n == revisions else "an ACTIVE revision",
                          image=f"{REPO}:2.0.0", **use) for n in range(revisions, 0, -1))


@pytest.mark.parametrize("resource, kind, use, what", [
    (SHARED_ROLE, "AWS::IAM::Role", {"execution_role": f"arn:aws:iam::1:role/{SHARED_ROLE}"},
     "the task execution role of"),
    (SHARED_LOG_GROUP, "AWS::Logs::LogGroup", {"log_group": SHARED_LOG_GROUP}, "the log group of"),
    (SHARED_SECRET, "AWS::SSM::Parameter", {"secrets": (SHARED_SECRET,)}, "a secret of"),
], ids=["role", "log group", "secret"])
@pytest.mark.parametrize("revisions, holders", [
    (1, "task definition webordinary-edit-task:1, the stable service deploys it"),
    (2, "task definitions webordinary-edit-task:2 (the stable service deploys it) and webordinary-edit-task:1 (an "
        "ACTIVE revision)"),
    (3, "task definitions webordinary-edit-task:3 (the stable service deploys it), webordinary-edit-task:2 (an "
        "ACTIVE revision) and webordinary-edit-task:1 (an ACTIVE revision)"),
    (5, "task definitions webordinary-edit-task:5 (the stable service deploys it), webordinary-edit-task:4 (an "
        "ACTIVE revision), webordinary-edit-task:3 (an ACTIVE revision) and 2 more"),
])
def test_a_role_log_group_or_secret_several_task_definitions_in_use_share_names_each_of_them(
        resource, kind, use, what, revisions, holders):
    # The first holder alone was named: the person deregistering it to let the role go found the
    # stack refused again, for the next one.
    assert_holds(old_stack_plan(resource, in_use=sharing(revisions, **use), kind=kind),
                 f"{resource} ({what} {holders})")


def test_a_role_one_task_definition_runs_as_its_task_role_and_another_as_its_execution_role_names_both():
    role = f"arn:aws:iam::1:role/{SHARED_ROLE}"
    runs, executes = sharing(2, task_role=role)[0], sharing(2, execution_role=role)[1]
    assert_holds(old_stack_plan(SHARED_ROLE, in_use=(runs, executes), kind="AWS::IAM::Role"),
                 f"{SHARED_ROLE} (the task role of task definition webordinary-edit-task:2, the stable service "
                 "deploys it; the task execution role of task definition webordinary-edit-task:1, an ACTIVE revision)")


@pytest.mark.parametrize("template, said", [
    ("webordinary-$(ecs_task_id)", "perhaps: the log group template 'webordinary-$(ecs_task_id)' FireLens sends the logs "
                                   "of {holders} to, which cleanup cannot resolve"),
    ("${service}/${task}", "the log group template '${service}/${task}' that FireLens sends the logs of {holders} to is "
                           "made only of placeholders: cleanup cannot tell which log groups it writes to, and keeps "
                           "every log group that fits it"),
], ids=["template", "only placeholders"])
def test_a_log_group_template_several_task_definitions_in_use_share_names_each_of_them(template, said):
    # The first alone was named: the person deregistering it to let the log group go found the stack
    # refused again, for the next one.
    holders = ("task definitions webordinary-edit-task:3 (the stable service deploys it), webordinary-edit-task:2 (an "
               "ACTIVE revision) and webordinary-edit-task:1 (an ACTIVE revision)")
    group = "webordinary-0123" if "-" in template else "webordinary/0123"  # a group the template fits
    assert_holds(old_stack_plan(group, in_use=sharing(3, log_group_templates=(template,)), kind="AWS::Logs::LogGroup"),
                 f"{group} ({said.replace('{holders}', holders)})", "may write to it")


@pytest.mark.parametrize("revisions, holders", [
    (2, "task definitions webordinary-edit-task:2 (the stable service deploys it) and webordinary-edit-task:1 (an "
        "ACTIVE revision) mount"),
    (3, "task definitions webordinary-edit-task:3 (the stable service deploys it), webordinary-edit-task:2 (an "
        "ACTIVE revision) and webordinary-edit-task:1 (an ACTIVE revision) mount"),
    (4, "task definitions webordinary-edit-task:4 (the stable service deploys it), webordinary-edit-task:3 (an "
        "ACTIVE revision), webordinary-edit-task:2 (an ACTIVE revision) and 1 more mount"),
])
def test_the_task_definitions_mounting_a_file_system_are_listed_with_and_before_the_last(revisions, holders):
    assert mounted_by(sharing(revisions, file_systems=("fs-0123abcd",))) == holders


@pytest.mark.parametrize("holdings", [(), (Holding(type=""),)], ids=["not read", "no resource type listed"])
@pytest.mark.parametrize("resource, held", [
    ("webordinary-edit-task-role",
     "webordinary-edit-task-role (the task role of task definition webordinary-edit-task:2, an ACTIVE revision)"),
    ("/ecs/webordinary-edit-task",
     "/ecs/webordinary-edit-task (the log group of task definition webordinary-edit-task:2, an ACTIVE revision)"),
])
def test_a_stack_holding_a_resource_of_no_type_known_named_as_a_role_or_log_group_in_use_is_refused(
        holdings, resource, held):
    # A listing of no resource type (a plan saved before types were read, or a summary without its
    # ResourceType) may be the role or the log group in use: taken for another kind, its stack was
    # deleted, and the role or the log group with it. Said as what it may be: "it holds <the task role>,
    # and production runs on it" guessed a type nobody read (a table of that name is not the role).
    uses = (IN_USE[1].model_copy(update={"task_role": "arn:aws:iam::1:role/service-role/webordinary-edit-task-role",
                                         "log_group": "/ecs/webordinary-edit-task"}),)
    state = StackState(name="webordinary-old-stack", status="CREATE_COMPLETE", resources=(resource,),
                       holdings=holdings)
    assert_holds(plan_cleanup(CleanupSpec(old_stacks=("webordinary-old-stack",)), T,
                              stacks={"webordinary-old-stack": state}, in_use=uses, images=IMAGES),
                 f"{resource}, a resource of no known type, which may be or configure {held}", "may run on it")


# Ids saying their kind themselves (an ARN, an fs-... id) and what each is of production's.
SAYING_THEIR_KIND = pytest.mark.parametrize("resource, held", [
    (A.format("ecs", f"cluster/{T.cluster}"), f"{T.cluster} (Targets.cluster, the ECS cluster)"),
    ("fs-0123456789abcdef0",
     "fs-0123456789abcdef0 (an EFS file system task definition webordinary-edit-task:2 mounts, an ACTIVE revision)"),
], ids=["an ARN", "an id saying its kind"])


@SAYING_THEIR_KIND
def test_a_stack_holding_a_resource_of_no_type_known_whose_id_says_its_kind_holds_that_resource(resource, held):
    # An ARN, or an fs-... id, says what it is whatever type its listing had: no guess to own up to.
    uses = (IN_USE[1].model_copy(update={"file_systems": ("fs-0123456789abcdef0",)}),)
    assert_holds(old_stack_plan(resource, in_use=uses), held)


@pytest.mark.parametrize("kind", ["Custom::Handler", "AWS::CloudFormation::CustomResource"])
@pytest.mark.parametrize("resource, use, held", [
    ("webordinary-edit-task-role", {"task_role": "arn:aws:iam::1:role/webordinary-edit-task-role"},
     "webordinary-edit-task-role (the task role of task definition webordinary-edit-task:2, an ACTIVE revision)"),
    ("/ecs/webordinary-edit-task", {"log_group": "/ecs/webordinary-edit-task"},
     "/ecs/webordinary-edit-task (the log group of task definition webordinary-edit-task:2, an ACTIVE revision)"),
], ids=["role", "log group"])
def test_a_stack_holding_a_custom_resource_named_as_a_role_or_log_group_in_use_is_refused(kind, resource, use, held):
    # A custom resource's physical id is whatever its handler returned, and deleting the stack runs
    # its handler's Delete: one named as the task role in use may be that role (made through the SDK),
    # and CDK's Custom::LogRetention answers with its log group's name and may delete it. Matched to
    # roles and log groups by the types AWS::IAM::Role and AWS::Logs::LogGroup alone, its stack was
    # deleted, the role or the group's logs with it. Said as what it may be: not known to be the role.
    assert_holds(old_stack_plan(resource, in_use=(IN_USE[1].model_copy(update=use),), kind=kind),
                 f"{kind} {resource}, which may be or configure {held}", "may run on it")


@SAYING_THEIR_KIND
def test_a_stack_holding_a_custom_resource_answering_with_the_id_of_a_resource_in_use_says_what_it_may_be(
        resource, held):
    # A custom resource's physical id is whatever its handler returned, an ARN or an fs-... id as well
    # as a bare name: one answering with the cluster's ARN, or with the file system's id (a handler
    # setting its backup policy), was refused as holding the cluster or the file system itself, which
    # deleting the stack deletes. Known is its type and what it answered with.
    uses = (IN_USE[1].model_copy(update={"file_systems": ("fs-0123456789abcdef0",)}),)
    assert_holds(old_stack_plan(resource, in_use=uses, kind="Custom::Handler"),
                 f"Custom::Handler {resource}, which may be or configure {held}", "may run on it")


def test_a_custom_resource_is_not_kept_for_fitting_a_log_group_template_alone():
    # A template of placeholders alone fits almost any id: a custom resource is held as a log group
    # by the name a task definition in use gives, not by a template it happens to fit.
    uses = (IN_USE[1].model_copy(update={"log_group": "/ecs/webordinary-edit-task",
                                         "log_group_templates": ("${service}/${task}",)}),)
    assert_holds(old_stack_plan("webordinary-old/handler", in_use=uses, kind="Custom::Whatever"), None)


def test_a_stack_holding_no_log_group_but_a_parameter_named_as_the_awslogs_group_in_use_is_not_refused():
    # An SSM parameter's physical id is its bare name, as a log group's is: kept as "the log group
    # of task definition ..." it is not, its stack was refused.
    uses = (IN_USE[1].model_copy(update={"log_group": "/ecs/webordinary-edit-task"}),)
    assert_holds(old_stack_plan("/ecs/webordinary-edit-task", in_use=uses, kind="AWS::SSM::Parameter"), None)


SECRET_ARN = "arn:aws:secretsmanager:us-west-2:1:secret:webordinary/api-key-AbC123"


@pytest.mark.parametrize("physical_id, named_in_use, held", [
    (SECRET_ARN, SECRET_ARN, "webordinary/api-key-AbC123 (a secret of task definition webordinary-edit-task:2"),
    # JSON-key form, and the partial ARN without the random suffix: the same secret.
    (SECRET_ARN, SECRET_ARN + ":token::", "webordinary/api-key-AbC123 (a secret of task definition"),
    (SECRET_ARN, "arn:aws:secretsmanager:us-west-2:1:secret:webordinary/api-key",
     "webordinary/api-key (a secret of task definition"),
    ("/webordinary/db-password", "arn:aws:ssm:us-west-2:1:parameter/webordinary/db-password",
     "/webordinary/db-password (a secret of task definition"),
    ("webordinary-db-password", "webordinary-db-password", "webordinary-db-password (a secret of task definition"),
    ("fs-0123abcd", "fs-0123abcd", "fs-0123abcd (an EFS file system task definition webordinary-edit-task:2 mounts"),
    ("fsap-0123abcd", "fsap-0123abcd", "fsap-0123abcd (an EFS access point task definition"),
    ("arn:aws:secretsmanager:us-west-2:1:secret:webordinary/old-key-XyZ789", SECRET_ARN, None),
    ("fs-9999aaaa", "fs-0123abcd", None),
])
def test_a_stack_holding_a_secret_or_file_system_of_a_task_definition_in_use_is_refused(physical_id, named_in_use,
                                                                                        held):
    # The old stack made the secret the revisions in use fetch at start, or the EFS file system
    # they mount: deleted with it, no task could start (or every task's data went with it).
    field = "file_systems" if named_in_use.startswith("fs") else "secrets"
    uses = (IN_USE[1].model_copy(update={field: (named_in_use,)}),)
    # A parameter's physical id is its bare name: its type says it is one.
    kind = None if physical_id.startswith(("arn:", "fs")) else "AWS::SSM::Parameter"
    assert_holds(old_stack_plan(physical_id, in_use=uses, kind=kind), held)


def test_a_secret_task_definitions_in_use_name_by_its_full_and_its_partial_arn_names_each_of_them():
    # One names it by its full ARN, the other without the random suffix: each was keyed apart, and the
    # first found alone was named; deregistering it left the stack refused, for the other.
    partial = SECRET_ARN.removesuffix("-AbC123")
    full, without = sharing(2, secrets=(SECRET_ARN,))[0], sharing(2, secrets=(partial,))[1]
    assert_holds(old_stack_plan(SECRET_ARN, in_use=(full, without)), (
        "webordinary/api-key-AbC123 (a secret of task definition webordinary-edit-task:2, the stable service deploys "
        "it), also named webordinary/api-key (a secret of task definition webordinary-edit-task:1, an ACTIVE "
        "revision)"))


LISTENER = A.format("elasticloadbalancing", "listener/app/webordinary-edit-alb/50dc6c495c0c9188/f2f7dc8efc522ab2")
RULE = A.format("elasticloadbalancing",
                "listener-rule/app/webordinary-edit-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee")


@pytest.mark.parametrize("resource, held", [
    (LISTENER, "the listener on port 80 of webordinary-edit-alb (Targets.listener_port), which takes production's"),
    (RULE, "the listener rule (path /*) that forwards production's traffic to webordinary-edit-stable and "
           "webordinary-edit-canary, the rule rollouts shift"),
    # The old version's own rule on the same listener, and another listener: theirs to delete.
    (RULE.replace("9683b2d02a6cabee", "0000000000000001"), None),
    (LISTENER.replace("f2f7dc8efc522ab2", "0000000000000002"), None),
])
def test_a_stack_holding_the_listener_or_rule_production_traffic_comes_through_is_refused(resource, held):
    # A CDK service stack that adds targets to a shared listener holds the rule it made: the old
    # edit stack may hold the very rule rollouts shift, and deleting it sends every request to
    # the listener's default action.
    from rollway.cleanup import RoutingInUse

    assert_holds(old_stack_plan(resource, routing=RoutingInUse(listener_arn=LISTENER, rule_arn=RULE)), held)


def test_the_dry_run_says_whether_an_image_goes_with_its_tag_or_stays_tagged_otherwise():
    # old-version and 0.9.0 tag one image: deleting one tag leaves the image, deleting both deletes it.
    one = plan(tags=("old-version",), dry_run=True)
    assert one.tags_kept == {"old-version": ("0.9.0",)}
    text = summary_markdown(planned_result(one), T.ecr_repository)
    assert f"- `old-version` (image {D_OLD}, which stays: still tagged `0.9.0`)" in text
    both = plan(tags=("old-version", "0.9.0"), dry_run=True)
    assert both.tags_kept == {}
    assert f"- `0.9.0` (image {D_OLD}, deleted with it: its last tag)" in summary_markdown(planned_result(both),
                                                                                          T.ecr_repository)


def test_the_archive_tags_state_reads_as_a_sentence():
    new = ArchiveState(commit="c1")
    assert describe_archive("pre-sqs", new, "origin") == (
        "archive tag pre-sqs: to point at c1 (not made locally yet; on origin: not there yet)")
    assert describe_archive("pre-sqs", new, None) == "archive tag pre-sqs: to point at c1 (not made locally yet; " \
                                                     "not to be pushed)"
    done = ArchiveState(commit="c1", local_commit="c1", remote_commit="c1")
    assert describe_archive("pre-sqs", done, "origin") == "archive tag pre-sqs: to point at c1 (locally on c1; on " \
                                                          "origin: on c1)"


def test_a_stack_read_again_before_its_deletion_is_kept_when_it_changed_or_would_be_refused_now():
    """The plan judged the stacks; each is deleted maybe an hour later, after the image tags and
    the stacks before it. What it became meanwhile is what the deletion would have deleted."""
    from rollway.cleanup import judge_stack_again

    old, nested = "webordinary-old-stack", "webordinary-old-stack-Queues-1A2B"
    judged = StackState(name=old, status="UPDATE_COMPLETE", stack_id="arn:stack/old/1",
                        last_updated="2026-11-01T10:00:00+00:00")
    planned = plan(stacks=(old, "older-reader", nested), described={
        old: judged, "older-reader": StackState(name="older-reader", status="CREATE_COMPLETE"),
        nested: StackState(name=nested, status="CREATE_COMPLETE", root_stack=old)})
    assert planned.delete_stacks == (old, "older-reader", nested) and not planned.refusals

    def again(now: StackState, name: str = old, deleted=(), later=("older-reader", nested)):
        return judge_stack_again(name, planned, now, T, deleted=deleted, later=later, in_use=IN_USE, routing=None,
                                 network=())

    assert again(judged) is None, "unchanged: deleted"
    assert again(StackState(name=old)) is None, "gone since: nothing to refuse"
    updated = again(judged.model_copy(update={"last_updated": "2026-12-04T15:00:00+00:00"}))
    assert updated == ("it changed after the plan judged it (it was updated at 2026-12-04T15:00:00+00:00, after the "
                       "plan read it); run cleanup again to judge it as it is now")
    assert "(termination protection was turned on)" in again(judged.model_copy(update={"termination_protection": True}))
    assert "its status is UPDATE_IN_PROGRESS now, not UPDATE_COMPLETE" in again(
        judged.model_copy(update={"status": "UPDATE_IN_PROGRESS"}))
    assert "it is a new stack of that name (arn:stack/old/2, not arn:stack/old/1)" in again(
        judged.model_copy(update={"stack_id": "arn:stack/old/2"}))
    # Unchanged itself, but production came to depend on it: a live stack imports its export now,
    # or a revision in use runs with the task role it made.
    imported = again(judged.model_copy(update={"imported_by": {"q-arn": ("WebordinarySQSStack",)}}))
    assert imported.startswith("since the plan judged it, stack(s) WebordinarySQSStack import its export(s) q-arn"), \
        imported
    holding = again(judged.model_copy(update={"resources": (IN_USE[1].task_definition,)}))
    assert holding.startswith("since the plan judged it, it holds task definition webordinary-edit-task:2"), holding
    # An importer this run deleted before it is no obstacle; one kept (not deleted) still is.
    importer = judged.model_copy(update={"imported_by": {"q-arn": ("older-reader",)}})
    assert again(importer, deleted=("older-reader",), later=(nested,)) is None
    # A nested stack whose root was kept is not deleted on its own.
    kept_root = again(planned.stacks_judged[nested], name=nested, later=())
    assert kept_root.startswith(f"since the plan judged it, it is nested in stack {old!r}, which is not being deleted")
    assert again(planned.stacks_judged[nested], name=nested, deleted=(old,), later=()) is None


def test_a_stack_whose_deletion_under_way_at_the_plan_failed_since_is_kept_saying_so_with_cloudformations_reason():
    """A stack the plan read DELETE_IN_PROGRESS (a run stopped while waiting for it, or someone
    deleting it by hand) and that ended DELETE_FAILED before its turn: "its status is DELETE_FAILED
    now" said what, not why, nor what becomes of it."""
    from rollway.cleanup import judge_stack_again, stack_changed

    old = "webordinary-old-stack"
    judged = StackState(name=old, status="DELETE_IN_PROGRESS", stack_id="arn:stack/old/1",
                        last_updated="2026-11-01T10:00:00+00:00")
    planned = plan(stacks=(old,), described={old: judged})
    assert planned.delete_stacks == (old,) and not planned.refusals, "a deletion under way is carried on"

    def again(now: StackState) -> str | None:
        return judge_stack_again(old, planned, now, T, deleted=(), later=(), in_use=IN_USE, routing=None, network=())

    failed = judged.model_copy(update={
        "status": "DELETE_FAILED", "status_reason": "The following resource(s) failed to delete: [Archive]. "})
    assert again(failed) == (
        "its deletion, under way when the plan read it, failed: it is DELETE_FAILED now (CloudFormation's reason: "
        "The following resource(s) failed to delete: [Archive].); this run did not try again: fix what stopped it, "
        "and the next cleanup run judges the stack afresh, as it is then")
    quiet = again(failed.model_copy(update={"status_reason": None}))
    assert "failed: it is DELETE_FAILED now (CloudFormation gave no reason; the stack's events name what it could " \
           "not delete)" in quiet, quiet
    # One whose deletion began after the plan read it, and failed.
    complete = judged.model_copy(update={"status": "UPDATE_COMPLETE"})
    assert stack_changed(complete, failed).startswith("its deletion, begun after the plan read it, failed: it is "
                                                   "DELETE_FAILED now (CloudFormation's reason: The following")
    # Another stack of the name, DELETE_FAILED: a new stack, as any other change.
    other = again(failed.model_copy(update={"stack_id": "arn:stack/old/2"}))
    assert other.startswith("it changed after the plan judged it (it is a new stack of that name"), other
    # Still failed when the next run reads it: judged as it is, and deleted again (DeleteStack retries it).
    assert plan(stacks=(old,), described={old: failed}).delete_stacks == (old,)
    assert judge_stack_again(old, plan(stacks=(old,), described={old: failed}), failed, T, deleted=(), later=(),
                             in_use=IN_USE, routing=None, network=()) is None


def test_a_stack_whose_holdings_changed_under_an_unchanged_root_is_kept_saying_what_changed():
    """A nested stack updated on its own leaves its root's status and LastUpdatedTime as they were:
    the stack passed for the one judged, and its deletion did what the plan had not said (deleted
    what it gained, or what its DeletionPolicy no longer keeps), while the record said the plan's."""
    from rollway.cleanup import judge_stack_again

    old = "webordinary-old-stack"
    judged = StackState(name=old, status="CREATE_COMPLETE", stack_id="arn:stack/old/1",
                        resources=("old-archive", "old-work", "arn:stack/old-Queues/1"), retained=("old-archive",))
    planned = plan(stacks=(old,), described={old: judged})
    assert planned.delete_stacks == (old,) and not planned.refusals

    def again(**changed) -> str | None:
        return judge_stack_again(old, planned, judged.model_copy(update=changed), T, deleted=(), later=(),
                                 in_use=IN_USE, routing=None, network=())

    assert again() is None
    begins = "it changed after the plan judged it (a nested stack of it was updated on its own: "
    assert again(resources=(*judged.resources, "old-added-1", "old-added-2")) == (
        f"{begins}it holds old-added-1; old-added-2 now, which the plan did not read); run cleanup again to judge it "
        "as it is now")
    assert again(retained=()) == (f"{begins}its DeletionPolicy no longer keeps old-archive, which the plan read as "
                                  "staying); run cleanup again to judge it as it is now")
    assert again(retained=("old-archive", "old-work")).startswith(
        f"{begins}its DeletionPolicy keeps old-work in place now, which the plan read as deleted with it)")
    many = again(resources=(*judged.resources, *(f"old-added-{i}" for i in range(5))))
    assert "old-added-0; old-added-1; old-added-2; and 2 more (every one listed by `aws cloudformation " \
           "list-stack-resources`) now" in many, many
    # Resources gone since (a deletion under way, a nested stack deleted) leave nothing unread: deleted.
    assert again(resources=("old-archive",)) is None


def test_a_stack_with_events_since_the_plan_read_it_is_kept_as_a_deploy_counts_it_changed():
    """An update of a stack already UPDATE_COMPLETE leaves its status, a failed update rolled back
    within the second its LastUpdatedTime, and moto sets none: its newest event is what moved, as
    a deploy tells which stacks it changed (``rollway.infra.changed_stacks``). The stack deleted
    was whatever the update had made of it."""
    from rollway.cleanup import judge_stack_again, stack_changed
    from rollway.infra import changed_stacks

    old = "webordinary-old-stack"
    judged = StackState(name=old, status="UPDATE_COMPLETE", stack_id="arn:stack/old/1",
                        last_updated="2026-11-01T10:00:00+00:00", last_event="e7")
    planned = plan(stacks=(old,), described={old: judged})
    updated = judged.model_copy(update={"last_event": "e12"})
    why = judge_stack_again(old, planned, updated, T, deleted=(), later=(), in_use=IN_USE, routing=None, network=())
    assert why == ("it changed after the plan judged it (CloudFormation has worked on it since the plan read it: its "
                   "newest event is e12, not e7); run cleanup again to judge it as it is now"), why
    # One notion of "changed": what keeps a planned stack is what a deploy counts as its change.
    for now in (updated, judged.model_copy(update={"stack_id": "arn:stack/old/2"}),
                judged.model_copy(update={"status": "UPDATE_ROLLBACK_COMPLETE"}),
                judged.model_copy(update={"last_updated": "2026-12-01T10:00:00+00:00"}), judged):
        assert (stack_changed(judged, now) is not None) == bool(changed_stacks([old], {old: judged}, {old: now})), now
    # A deletion under way when the plan read it goes on adding events: what was planned, not a change.
    deleting = judged.model_copy(update={"status": "DELETE_IN_PROGRESS"})
    assert stack_changed(deleting, deleting.model_copy(update={"last_event": "e30"})) is None
    # A plan recorded before the newest event was read (none in it) is judged on the rest, as then.
    assert stack_changed(judged.model_copy(update={"last_event": None}), updated) is None


def test_an_image_only_active_revisions_keep_is_refused_saying_how_to_let_it_go_and_one_in_use_is_not():
    def use(revision: int, why: str, image: str) -> ImageUse:
        return ImageUse(task_definition=f"arn:aws:ecs:us-west-2:1:task-definition/{T.task_family}:{revision}",
                        why=why, image=image)

    active = f"an ACTIVE revision of {T.task_family}"
    in_use = (
        use(3, f"the stable service deploys it, {active}", f"{REPO}:2.0.0"),
        use(2, active, f"{REPO}:1.0.0"),
        use(4, active, f"{REPO}:old-version"),
        use(5, active, f"{REPO}@{D_OLD}"),
        use(1, active, f"{REPO}@{D_PINNED}"),
        use(6, "running task 0abc", f"{REPO}@{D_PINNED}"),  # a task still runs it
    )
    p = plan_cleanup(CleanupSpec(old_image_tags=("1.0.0", "old-version", "0.9.0", "2.0.0", "release",
                                                 "pinned-alias")),
                     T, stacks={}, in_use=in_use, images=IMAGES, archive=None)
    reasons = {r.name: r.reason for r in p.refusals}
    command = "aws ecs deregister-task-definition --task-definition"
    assert f"deregister it (`{command} {T.task_family}:2`) and run cleanup again" in reasons["1.0.0"]
    for tag in ("old-version", "0.9.0"):  # two revisions keep that image, by tag and by digest
        assert (f"deregister each (`{command} <family:revision>`: {T.task_family}:4; {T.task_family}:5)"
                in reasons[tag]), reasons[tag]
    for tag in ("2.0.0", "release", "pinned-alias"):  # a service deploys it, or a task runs it
        assert "deregister" not in reasons[tag], reasons[tag]


def test_an_image_tag_no_image_has_says_so_naming_the_repositorys_close_tags():
    """A misspelt tag was listed under "Not found: deleted before, or never there" with nothing
    more: the run looked done while the old image stayed under its real tag."""
    p = plan(tags=("relase", "0.9.1", "nothing-like-it", "0.9.0"))

    assert p.gone_tags == ("relase", "0.9.1", "nothing-like-it") and p.delete_tags == ("0.9.0",)
    # A tag this run deletes is no likelier meaning: 0.9.1's neighbour 0.9.0 goes anyway.
    assert p.tags_close == {"relase": ("release",)}, p.tags_close
    assert plan(tags=("0.9.1",)).tags_close == {"0.9.1": ("0.9.0",)}
    text = summary_markdown(planned_result(p), T.ecr_repository)
    found = text[text.index("## Not found"):]
    assert (f"- image tag `relase`: not in `{T.ecr_repository}`; tags there close to it: "
            "`release` (misspelt?)\n") in found, found
    assert f"- image tag `nothing-like-it`: not in `{T.ecr_repository}`\n" in found
    # Each line names its tag once: "image tag `relase`: no image tagged `relase`" said it twice.
    named = [line for line in found.splitlines() if line.startswith("- image tag")]
    assert len(named) == 3 and all(line.count(f"`{line.split('`')[1]}`") == 1 for line in named), named


def test_a_delete_failed_stacks_plan_line_gives_cloudformations_reason_on_one_line_and_bounded():
    # DELETE_FAILED is retried: the plan's line said the status alone, not what kept the stack the
    # last time (and would again), which only the stack's events told.
    from rollway.cleanup import WHY_SHOWN, describe_stack_state

    failed = StackState(name=OLD, status="DELETE_FAILED", status_reason=(
        "The following resource(s) failed to delete: [Bucket].\n\x1b[2KBucket is not empty"))
    assert describe_stack_state(failed) == (
        "DELETE_FAILED (CloudFormation's reason: The following resource(s) failed to delete: [Bucket]. "
        "\\x1b[2KBucket is not empty)")
    long = StackState(name=OLD, status="DELETE_FAILED", status_reason="x" * (WHY_SHOWN + 500))
    assert describe_stack_state(long).endswith("x... (500 characters more in the stack's events))")
    assert describe_stack_state(StackState(name=OLD, status="DELETE_FAILED")) == "DELETE_FAILED"
    assert describe_stack_state(StackState(name=OLD, status="UPDATE_COMPLETE", status_reason="done")) == \
        "UPDATE_COMPLETE"


def test_a_nested_stack_deleted_with_its_root_has_its_resources_listed_once_under_it():
    # The root's holdings include its nested stack's: both listed, each of the nested stack's
    # resources showed twice in the summary, under two stacks, as if each had held it.
    nested = "old-stack-Inner-1ABC"
    inner_queue = "https://sqs.us-west-2.amazonaws.com/123456789012/inner"
    nested_id = f"arn:aws:cloudformation:us-west-2:123456789012:stack/{nested}/1"
    result = CleanupResult(deleted_stacks=(OLD, nested), stack_resources={
        OLD: ("old-queue-url", nested_id, inner_queue, "inner-table"),
        nested: (inner_queue, "inner-table"),
    }, stack_retained={OLD: ("inner-table",), nested: ("inner-table",)})
    text = summary_markdown(result, T.ecr_repository)
    assert text.count(inner_queue) == 1 and text.count("inner-table") == 1, text
    assert (f"- `{OLD}`, with the 2 resource(s) it holds (besides those of `{nested}`, listed under it):\n"
            f"  - `old-queue-url`\n  - `{nested_id}`\n"
            f"- `{nested}`, with the 2 resource(s) it holds (1 kept by their DeletionPolicy: they stay):\n"
            f"  - `{inner_queue}`\n  - `inner-table` (kept: its DeletionPolicy retains it)\n") in text, text


def test_a_stack_holding_a_kept_log_group_and_a_role_of_its_name_says_only_one_of_them_stays():
    # A log group and a role share one physical id: listed twice, the id was said kept at each
    # listing, where the DeletionPolicy keeps the log group only and the role goes with the stack.
    result = CleanupResult(deleted_stacks=(OLD,), stack_resources={OLD: ("old-app", "old-app")},
                           stack_retained={OLD: ("old-app",)})
    text = summary_markdown(result, T.ecr_repository)
    assert (f"- `{OLD}`, with the 2 resource(s) it holds (1 kept by their DeletionPolicy: they stay):\n"
            "  - `old-app` (kept: its DeletionPolicy retains it)\n  - `old-app`\n") in text, text


def test_a_stack_gaining_a_role_of_a_name_it_held_as_a_log_group_is_kept_saying_so():
    # A log group and a role share one physical id: a role a nested stack gained since the plan,
    # beside the log group of its name the plan had read, passed for read, and its deletion deleted a
    # role the run's record did not name; the same of a DeletionPolicy keeping one of the two now.
    from rollway.cleanup import judge_stack_again

    logs = Holding(type="AWS::Logs::LogGroup")
    judged = StackState(name=OLD, status="CREATE_COMPLETE", stack_id="arn:stack/old/1", resources=("old-app",),
                        holdings=(logs,))
    planned = plan(stacks=(OLD,), described={OLD: judged})

    def again(*holdings: Holding) -> str | None:
        now = judged.model_copy(update={"resources": ("old-app",) * len(holdings), "holdings": holdings,
                                        "retained": tuple("old-app" for h in holdings if h.retained)})
        return judge_stack_again(OLD, planned, now, T, deleted=(), later=(), in_use=IN_USE, routing=None, network=())

    begins = "it changed after the plan judged it (a nested stack of it was updated on its own: "
    assert again(logs, Holding(type="AWS::IAM::Role")) == (
        f"{begins}it holds old-app (AWS::IAM::Role) now, which the plan did not read); run cleanup again to judge it "
        "as it is now")
    assert again(logs.model_copy(update={"retained": True})).startswith(
        f"{begins}its DeletionPolicy keeps old-app in place now, which the plan read as deleted with it)")
    assert again(logs) is None
    # Of two listings of the id, the one kept is the role now, the log group before.
    role = Holding(type="AWS::IAM::Role")
    judged = judged.model_copy(update={"resources": ("old-app", "old-app"), "retained": ("old-app",),
                                       "holdings": (logs.model_copy(update={"retained": True}), role)})
    planned = plan(stacks=(OLD,), described={OLD: judged})
    assert again(logs, role.model_copy(update={"retained": True})).startswith(
        f"{begins}its DeletionPolicy keeps old-app (AWS::IAM::Role) in place now, which the plan read as deleted with "
        "it; and its DeletionPolicy no longer keeps old-app (AWS::Logs::LogGroup), which the plan read as staying)")


def test_where_a_resource_is_is_read_from_its_holding_and_from_nested_in_for_a_plan_whose_holdings_name_none():
    # A plan read before holdings named their nested stack says it by id (nested_in); one holding both
    # could say two things of one resource, and is refused.
    queue = "https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input"
    inner = "webordinary-old-stack-Inner-1"
    for state in (StackState(name=OLD, status="CREATE_COMPLETE", resources=(queue,), nested_in={queue: inner}),
                  StackState(name=OLD, status="CREATE_COMPLETE", resources=(queue,),
                             holdings=(Holding(type="AWS::SQS::Queue", nested_in=inner),))):
        (refusal,) = plan_cleanup(CleanupSpec(old_stacks=(OLD,)), T, stacks={OLD: state}, in_use=(), images=()).refusals
        assert f"it holds webordinary-edit-input (a queue in Targets.queues), in its nested stack {inner}:" in \
            refusal.reason, refusal.reason
    with pytest.raises(ValidationError, match="give the holdings alone"):
        StackState(name=OLD, resources=(queue,), nested_in={queue: inner},
                   holdings=(Holding(type="AWS::SQS::Queue", nested_in=inner),))


def test_a_root_holding_a_role_of_the_name_of_its_nested_stacks_log_group_lists_the_role_under_itself():
    # A role and a log group share one physical id: the root's own role was dropped from its list as
    # one of its nested stack's resources (the log group), and the summary named nowhere a role the
    # deletion deleted. The DeletionPolicy keeping the log group is said of the log group alone.
    nested = "webordinary-old-stack-Inner-1ABC"
    nested_id = f"arn:aws:cloudformation:us-west-2:123456789012:stack/{nested}/1"
    logs = Holding(type="AWS::Logs::LogGroup", retained=True, nested_in=nested)
    root = StackState(name=OLD, status="CREATE_COMPLETE", resources=("old-app", nested_id, "old-app"),
                      holdings=(Holding(type="AWS::IAM::Role"), Holding(type="AWS::CloudFormation::Stack"), logs),
                      retained=("old-app",))
    inner = StackState(name=nested, status="CREATE_COMPLETE", root_stack=OLD, resources=("old-app",),
                       holdings=(logs.model_copy(update={"nested_in": None}),), retained=("old-app",))
    planned = plan(stacks=(OLD, nested), described={OLD: root, nested: inner})
    assert planned.delete_stacks == (OLD, nested) and not planned.refusals
    text = summary_markdown(planned_result(planned), T.ecr_repository)
    assert (f"- `{OLD}`, with the 2 resource(s) it holds (besides those of `{nested}`, listed under it):\n"
            f"  - `old-app`\n  - `{nested_id}`\n"
            f"- `{nested}`, with the 1 resource(s) it holds (1 kept by their DeletionPolicy: they stay):\n"
            "  - `old-app` (kept: its DeletionPolicy retains it)\n") in text, text


@pytest.mark.parametrize("resource, kind, held", [
    (T.cluster, "AWS::DynamoDB::Table", None),  # a table named like the cluster is not the cluster
    (T.cluster, "AWS::S3::Bucket", None),
    (T.cluster, "AWS::ECS::Cluster", f"{T.cluster} (Targets.cluster, the ECS cluster)"),
    # A handler may make anything, or configure it: said as what it may be, not as the cluster itself.
    (T.cluster, "Custom::Cluster",
     f"Custom::Cluster {T.cluster}, which may be or configure {T.cluster} (Targets.cluster, the ECS cluster)"),
    # No type read: of any kind, said as what it may be (its type is not known).
    (T.cluster, None,
     f"{T.cluster}, a resource of no known type, which may be or configure {T.cluster} (Targets.cluster, the ECS "
     "cluster)"),
    # Its physical id is the cluster's name, and deleting it takes the capacity providers from the
    # cluster, stopping the placement of a service whose strategy names them: told as what it is, not
    # as the cluster (which stays).
    (T.cluster, "AWS::ECS::ClusterCapacityProviderAssociations",
     f"the capacity provider associations (AWS::ECS::ClusterCapacityProviderAssociations) of {T.cluster} "
     "(Targets.cluster, the ECS cluster)"),
    # An AWS type not known to be another kind of thing may be one of the resource's: judged as any kind.
    (T.ecr_repository, "AWS::ECR::RepositoryCreationTemplate",
     f"AWS::ECR::RepositoryCreationTemplate {T.ecr_repository}, which may be or configure {T.ecr_repository} "
     "(Targets.ecr_repository, the image repository)"),
    (T.flags_table, "AWS::ECR::Repository", None),
    (T.flags_table, "AWS::ECS::Cluster", None),
    (T.flags_table, "AWS::DynamoDB::Table", f"{T.flags_table} (Targets.flags_table, the feature flags table)"),
    (T.rollouts_table, "AWS::DynamoDB::GlobalTable", f"{T.rollouts_table} (Targets.rollouts_table, the rollout ledger)"),
    (T.ecr_repository, "AWS::ECR::Repository",
     f"{T.ecr_repository} (Targets.ecr_repository, the image repository)"),
    (T.dashboard, "AWS::CloudWatch::Alarm", None),
    (T.dashboard, "AWS::CloudWatch::Dashboard", f"{T.dashboard} (Targets.dashboard, the dashboard)"),
    ("fs-0123456789abcdef0", "AWS::EFS::FileSystem",
     "fs-0123456789abcdef0 (an EFS file system task definition webordinary-edit-task:2 mounts, an ACTIVE revision)"),
    ("webordinary-api-key", "AWS::SSM::Parameter",
     "webordinary-api-key (a secret of task definition webordinary-edit-task:2, an ACTIVE revision)"),
    ("webordinary-api-key", "AWS::DynamoDB::Table", None),
])
def test_a_resource_named_as_one_production_uses_is_kept_only_when_of_its_kind(resource, kind, held):
    # A bare physical id names no kind: a DynamoDB table named like the cluster was refused "as the
    # ECS cluster", and the old stack holding nothing production uses stayed, costing money.
    uses = (IN_USE[1].model_copy(update={"file_systems": ("fs-0123456789abcdef0",),
                                         "secrets": ("webordinary-api-key",)}),)
    # What only its name and a type in neither type table tie to production's is said as what it may be.
    assert_holds(old_stack_plan(resource, in_use=uses, kind=kind), held,
                 "may run on it" if held and "may be or configure" in held else "runs on it")


def test_a_saved_plan_whose_retained_and_holdings_disagree_is_refused_and_one_without_retained_derives_it():
    # retained repeats what holdings say (kept for plans saved before holdings): the plan judged a stack
    # by its holdings and its record said what retained said, so a saved plan whose two disagreed was
    # deleted on the one and reported on the other.
    from rollway.cleanup import CleanupPlan

    queue = "https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input"
    held = StackState(name=OLD, status="CREATE_COMPLETE", resources=(queue, "old-archive"),
                      holdings=(Holding(type="AWS::SQS::Queue", retained=True), Holding(type="AWS::S3::Bucket")),
                      retained=(queue,))
    planned = plan(stacks=(OLD,), described={OLD: held})
    assert planned.delete_stacks == (OLD,) and not planned.refusals
    saved = planned.model_dump(mode="json")
    assert CleanupPlan.model_validate(saved) == planned
    saved["stacks_judged"][OLD]["retained"] = ["old-archive"]
    with pytest.raises(ValidationError) as refused:
        CleanupPlan.model_validate(saved)
    assert (f"stack {OLD}: its retained (old-archive) is not what its holdings' DeletionPolicy keeps ({queue})"
            in str(refused.value)), str(refused.value)
    del saved["stacks_judged"][OLD]["retained"]
    assert CleanupPlan.model_validate(saved).stack_retained == {OLD: (queue,)}


SCALING = (f"arn:aws:autoscaling:us-west-2:123456789012:scalingPolicy:6d8972f3-efc8-437c-92d1-6270f29a66e7:"
           "resource/ecs/service/{}/{}:policyName/{}")


@pytest.mark.parametrize("resource, kind, held", [
    (f"service/{T.cluster}/{T.stable_service}|ecs:service:DesiredCount|ecs",
     "AWS::ApplicationAutoScaling::ScalableTarget",
     f"the Application Auto Scaling scalable target that scales {T.stable_service} (Targets.stable_service, the "
     "stable service)"),
    (SCALING.format(T.cluster, T.canary_service, "cpu-target"), "AWS::ApplicationAutoScaling::ScalingPolicy",
     f"the Application Auto Scaling scaling policy cpu-target that scales {T.canary_service} "
     "(Targets.canary_service, the canary service)"),
    # No type read: the id alone says what it is.
    (f"service/{T.cluster}/{T.canary_service}|ecs:service:DesiredCount|ecs", None,
     f"the Application Auto Scaling scalable target that scales {T.canary_service} (Targets.canary_service"),
    # Another cluster's service of the same name, or another service, is not production's.
    (f"service/webordinary-old-cluster/{T.stable_service}|ecs:service:DesiredCount|ecs",
     "AWS::ApplicationAutoScaling::ScalableTarget", None),
    (SCALING.format(T.cluster, "webordinary-edit-service-old", "cpu-target"),
     "AWS::ApplicationAutoScaling::ScalingPolicy", None),
])
def test_a_stack_holding_the_autoscaling_of_a_production_service_is_refused_naming_what_it_scales(resource, kind,
                                                                                                   held):
    # Deleting the stack deleted the scalable target and its policies: the service stayed, pinned at
    # its desired count whatever its load.
    assert_holds(old_stack_plan(resource, kind=kind), held)


def test_an_untyped_record_lists_under_its_root_none_of_the_resources_its_nested_stacks_share_an_id_of():
    # A record of an older release, read without types: two nested stacks each held a resource of one
    # id (a role in one, a log group in the other). Counted once between them, the second was listed
    # under the root too, as if the root had held a third.
    first, second = "old-stack-A-1", "old-stack-B-1"
    first_id, second_id = (f"arn:aws:cloudformation:us-west-2:123456789012:stack/{n}/1" for n in (first, second))
    result = CleanupResult(deleted_stacks=(OLD, first, second), stack_resources={
        OLD: (first_id, "old-app", second_id, "old-app", "old-queue-url"), first: ("old-app",),
        second: ("old-app",)})
    text = summary_markdown(result, T.ecr_repository)
    assert (f"- `{OLD}`, with the 3 resource(s) it holds (besides those of `{first}`, `{second}`, listed under "
            f"them):\n  - `{first_id}`\n  - `{second_id}`\n  - `old-queue-url`\n- `{first}`") in text, text


def test_an_untyped_record_says_kept_no_resource_of_the_root_whose_id_its_nested_stack_keeps():
    # Read without types: the root held a role, its nested stack a log group of that name, which its
    # DeletionPolicy keeps. The root's retained (the nested stack's included) named the id, and the
    # root's own role was said kept: the role went with the stack.
    nested = "old-stack-Inner-1ABC"
    nested_id = f"arn:aws:cloudformation:us-west-2:123456789012:stack/{nested}/1"
    result = CleanupResult(deleted_stacks=(OLD, nested), stack_resources={OLD: ("old-app", nested_id, "old-app"),
                                                                          nested: ("old-app",)},
                           stack_retained={OLD: ("old-app",), nested: ("old-app",)})
    text = summary_markdown(result, T.ecr_repository)
    assert (f"- `{OLD}`, with the 2 resource(s) it holds (besides those of `{nested}`, listed under it):\n"
            f"  - `{nested_id}`\n  - `old-app`\n"
            f"- `{nested}`, with the 1 resource(s) it holds (1 kept by their DeletionPolicy: they stay):\n"
            "  - `old-app` (kept: its DeletionPolicy retains it)\n") in text, text


def test_a_saved_plan_without_holdings_whose_retained_names_what_the_stack_does_not_hold_is_refused_naming_it():
    # A plan saved before holdings were read judges each resource kept by its id in retained: one naming
    # an id the stack does not list (or more listings of it than it holds) said of a stack it was to
    # delete that it left in place what it never held.
    from rollway.cleanup import CleanupPlan

    queue = "https://sqs.us-west-2.amazonaws.com/1/webordinary-edit-input"
    planned = plan(stacks=(OLD,), described={OLD: StackState(name=OLD, status="CREATE_COMPLETE",
                                                              resources=(queue, "old-archive"), retained=(queue,))})
    saved = planned.model_dump(mode="json")
    assert CleanupPlan.model_validate(saved) == planned
    for retained, named in ((["old-archive", "old-table"], "old-table (not among its resources)"),
                            ([queue, queue], f"{queue} (named 2 times, listed 1)")):
        saved["stacks_judged"][OLD]["retained"] = retained
        with pytest.raises(ValidationError) as refused:
            CleanupPlan.model_validate(saved)
        assert (f"stack {OLD}: its retained names what it does not hold: {named}; a plan saying the stack's "
                "deletion leaves what it does not hold is not acted on") in str(refused.value), str(refused.value)


def test_a_stack_holding_a_file_system_several_task_definitions_in_use_mount_names_each_or_how_many_more():
    # Several revisions in use mounted the file system, and the refusal named the first alone: the
    # person deregistering it to let the file system go found the next one keeping it, run after run.
    def mounting(*revisions: int) -> tuple[ImageUse, ...]:
        return tuple(ImageUse(task_definition=f"arn:aws:ecs:us-west-2:1:task-definition/webordinary-edit-task:{r}",
                              why="an ACTIVE revision", image=f"{REPO}:1.0.0", file_systems=("fs-0123abcd",))
                     for r in revisions)

    assert_holds(old_stack_plan("fs-0123abcd", in_use=mounting(2, 2, 1)), (
        "fs-0123abcd (an EFS file system task definitions webordinary-edit-task:2 (an ACTIVE revision) and "
        "webordinary-edit-task:1 (an ACTIVE revision) mount)"))
    assert_holds(old_stack_plan("fs-0123abcd", in_use=mounting(5, 4, 3, 2, 1)), (
        "fs-0123abcd (an EFS file system task definitions webordinary-edit-task:5 (an ACTIVE revision), "
        "webordinary-edit-task:4 (an ACTIVE revision), webordinary-edit-task:3 (an ACTIVE revision) and 2 more "
        "mount)"))


SCHEDULED = (f"arn:aws:autoscaling:us-west-2:123456789012:scheduledAction:8e86929f-8a7c-4d5e-9f3b-1a2b3c4d5e6f:"
             "resource/{}:scheduledActionName/{}")


@pytest.mark.parametrize("resource, kind, held", [
    (f"table/{T.flags_table}|dynamodb:table:ReadCapacityUnits|dynamodb", "AWS::ApplicationAutoScaling::ScalableTarget",
     f"the Application Auto Scaling scalable target that scales {T.flags_table} (Targets.flags_table, the feature "
     "flags table)"),
    (f"table/{T.rollouts_table}/index/by-service|dynamodb:index:WriteCapacityUnits|dynamodb",
     "AWS::ApplicationAutoScaling::ScalableTarget",
     f"the Application Auto Scaling scalable target that scales index by-service of {T.rollouts_table} "
     "(Targets.rollouts_table, the rollout ledger)"),
    (SCALING.replace("ecs/service/{}/{}", "dynamodb/table/{}").format(T.flags_table, "read-target"),
     "AWS::ApplicationAutoScaling::ScalingPolicy",
     f"the Application Auto Scaling scaling policy read-target that scales {T.flags_table} (Targets.flags_table"),
    # A scheduled action is the scalable target's own (its ScheduledActions) in a template; a custom
    # resource answering with a scheduled action's ARN is judged by what it scales (said as what it
    # may be), a service's too.
    (SCHEDULED.format(f"dynamodb/table/{T.rollouts_table}", "nightly"), "Custom::Schedule",
     f"Custom::Schedule {SCHEDULED.format(f'dynamodb/table/{T.rollouts_table}', 'nightly')}, which may be or "
     f"configure the Application Auto Scaling scheduled action nightly that scales {T.rollouts_table} "
     "(Targets.rollouts_table"),
    (SCHEDULED.format(f"ecs/service/{T.cluster}/{T.stable_service}", "mornings"), None,
     f"the Application Auto Scaling scheduled action mornings that scales {T.stable_service} "
     "(Targets.stable_service"),
    # Another table's scaling is not production's.
    ("table/webordinary-old-table|dynamodb:table:ReadCapacityUnits|dynamodb",
     "AWS::ApplicationAutoScaling::ScalableTarget", None),
    (SCHEDULED.format("dynamodb/table/webordinary-old-table", "nightly"), None, None),
])
def test_a_stack_holding_the_autoscaling_of_a_production_table_is_refused_naming_what_it_scales(resource, kind,
                                                                                                 held):
    # Deleting the stack deregistered the table's scalable target, its scaling policies and scheduled
    # actions with it: the table stayed at its provisioned capacity whatever its load, and throttled.
    assert_holds(old_stack_plan(resource, kind=kind), held,
                 "may run on it" if kind and kind.startswith("Custom::") else "runs on it")


def test_the_plans_line_on_the_network_says_what_production_does_with_each_kind_of_thing():
    # The log said "production runs in" the load balancer's certificates and the EFS mount targets too:
    # production runs in neither; its load balancer serves the one, it mounts its file systems through
    # the other.
    from rollway.cleanup import NetworkUse, describe_network

    certificate = "arn:aws:acm:us-west-2:1:certificate/0d1e2f"
    network = [NetworkUse(resource="subnet-1", user="a subnet of the stable service"),
               NetworkUse(resource="sg-1", user="a security group of the stable service"),
               NetworkUse(resource="subnet-1", user="a subnet of load balancer webordinary-edit-alb"),
               NetworkUse(resource=certificate, user="the certificate of the listener on port 443"),
               NetworkUse(resource="fsmt-1", user="a mount target in subnet subnet-2 of the EFS file system fs-1"),
               NetworkUse(resource="sg-2", user="a security group of the mount target fsmt-1")]
    assert describe_network(network) == (
        "production's tasks, its load balancer or the mount targets of the EFS file systems it mounts are in "
        f"subnet-1, sg-1, sg-2; its load balancer serves {certificate}; it mounts EFS file systems through fsmt-1")
    assert describe_network(network[:2]) == "production's tasks or its load balancer are in subnet-1, sg-1"
    assert describe_network(network[3:4]) == f"production's load balancer serves {certificate}"
    assert describe_network([]) == "production's network: nothing read"
    # The subnet of a mount target EFS is deleting (the mount target itself no longer listed) is not
    # one the tasks or the load balancer are in.
    leaving = NetworkUse(resource="subnet-3", user="the subnet of the mount target fsmt-3, which EFS is deleting,",
                         leaving=True)
    assert describe_network([*network[:2], leaving]) == (
        "production's tasks, its load balancer or the mount targets of the EFS file systems it mounts are in "
        "subnet-1, sg-1, subnet-3")


def test_a_nested_stacks_resource_named_like_its_sibling_does_not_hide_that_siblings_resources_under_the_root():
    # A nested stack is told to be another's by its stack id among that one's resources, not by a bare
    # name: a log group named like its sibling stack had the sibling's resources listed under the root.
    first, second = "old-stack-A-1", "old-stack-B-1"
    first_id, second_id = (f"arn:aws:cloudformation:us-west-2:123456789012:stack/{n}/1" for n in (first, second))
    result = CleanupResult(deleted_stacks=(OLD, first, second), stack_resources={
        OLD: (first_id, "a-queue-url", second_id, first, "old-queue-url"), first: ("a-queue-url",),
        second: (first,)})
    text = summary_markdown(result, T.ecr_repository)
    assert (f"- `{OLD}`, with the 3 resource(s) it holds (besides those of `{first}`, `{second}`, listed under "
            f"them):\n  - `{first_id}`\n  - `{second_id}`\n  - `old-queue-url`\n- `{first}`") in text, text
