"""A rollback whose recorded ``previous_task_definition`` was deregistered (INACTIVE) since the
rollout began: a stack update replaced the task definition, or a person cleaned revisions up
(or deleted it: DELETE_IN_PROGRESS, which ECS refuses alike).

Real ECS refuses UpdateService to an INACTIVE revision ("ClientException: TaskDefinition is
inactive"); moto takes it, so the refusal is made at the botocore level for every client in the
process (``ecs_refuses_inactive_revisions``), the rollback flow's own included. The rollback
failed on it with the bare ClientError, every time it was run again (`rollway abort` restores the
recorded revision), so the rollout stayed rolling back and no new one could start.
"""
from __future__ import annotations

import json

import pytest
from prefect import flow

import rollway.cli.ops as ops
from flows.rollback import RollbackIncomplete, execute_rollback, rollback
from rollway.aws.ecs import EcsDeployer
from rollway.aws.environment import aws_environment
from rollway.aws.errors import TargetNotFound, TaskDefinitionInactive
from rollway.clock import ClockSettings
from rollway.ledger import RolloutRecord, begin_rollback, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.adapters.test_ecs import being_deleted
from tests.flows.moto_env import inbox, saved_blocks
from tests.flows.test_canary_moto import read_back


# How each status ECS refuses a service is said: deregistered, or deleted since.
GONE = {"INACTIVE": "deregistered", "DELETE_IN_PROGRESS": "deleted"}


def deregistered_since(aws, *, stable_moved: bool, status: str = "INACTIVE"):
    """A rollout at 5 % that no live run owns, its recorded previous task definition (what the
    canary ran before it) deregistered since (``status`` DELETE_IN_PROGRESS: deleted after that).
    ``stable_moved``: the stack update that replaced it moved the stable service onto a new
    revision first; otherwise stable still runs the old one.

    Returns:
        (env, the deregistered revision, the revision stable runs now).
    """
    t = aws.targets
    ecs = aws.get_client("ecs")
    deployer = EcsDeployer(ecs, t)
    env = aws_environment(aws.get_client, t, ClockSettings().build())
    before = deployer.describe(t.stable_service)
    stable_now = before.task_definition
    if stable_moved:
        stable_now = deployer.register_revision(deployer.image_of(before.task_definition), before.task_definition)
        ecs.update_service(cluster=t.cluster, service=t.stable_service, taskDefinition=stable_now)
    spec = RolloutSpec(image=f"{aws.topology.repository_uri}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    release = deployer.register_revision(spec.image, before.task_definition)
    ecs.update_service(cluster=t.cluster, service=t.canary_service, taskDefinition=release, desiredCount=1)
    if status == "DELETE_IN_PROGRESS":
        being_deleted(aws, before.task_definition)
    else:
        ecs.deregister_task_definition(taskDefinition=before.task_definition)
    env.router.set_weights(Weights.canary_at(5))
    now = env.clock.now()
    env.ledger.create(RolloutRecord(
        service=t.canary_service, rollout_id=new_rollout_id(now - 600), image=spec.image,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0, weights=Weights.canary_at(5),
        previous_task_definition=before.task_definition, canary_task_definition=release,
        stable_desired=before.desired), owner="process/gone", now=now - 600, lease_seconds=0)
    return env, before.task_definition, stable_now


def pages(aws, url: str) -> list[dict]:
    messages = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


@pytest.mark.parametrize("status", ["INACTIVE", "DELETE_IN_PROGRESS"])
def test_an_abort_whose_recorded_revision_was_deregistered_restores_the_one_stable_runs(
        aws, capsys, ecs_refuses_inactive_revisions, status):
    """Deleted since (DELETE_IN_PROGRESS) as deregistered: ECS refuses it alike, and the rollback
    failed on it with the bare ClientError every time it was run again."""
    t = aws.targets
    env, gone, stable_now = deregistered_since(aws, stable_moved=True, status=status)
    url = inbox(aws)
    blocks = saved_blocks(aws, "inactive")

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=blocks, credentials_block=blocks)

    out, err = capsys.readouterr()
    assert code == 0, (out, err)
    assert ecs_refuses_inactive_revisions == [gone]
    weights, _, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary.desired == 0 and canary.task_definition == stable_now
    record = env.ledger.get(t.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert record.last_transition("rollback").task_definition == stable_now
    (page,) = pages(aws, url)
    said = " ".join(page["Message"].split())
    assert page["Subject"] == f"Rollback: {t.canary_service}"
    assert f"{gone}, which {t.canary_service} ran before the rollout, was {GONE[status]} since ({status}" in said, said
    assert f"at 0 tasks on {stable_now}, the revision {t.stable_service} runs" in said, said


@pytest.mark.parametrize("status", ["INACTIVE", "DELETE_IN_PROGRESS"])
def test_a_rollback_with_no_active_revision_to_restore_says_what_and_how_and_still_moves_the_traffic(
        aws, ecs_refuses_inactive_revisions, status):
    """The judge's rollback, stable still on the deregistered revision: the traffic goes back and
    the canary to 0 on what it runs; the failed step names both revisions and the way out, which
    then finishes the rollback."""
    t = aws.targets
    env, gone, _ = deregistered_since(aws, stable_moved=False, status=status)
    release = read_back(aws)[2].task_definition

    @flow
    def judge_rolls_back():
        return execute_rollback(env, "error rate 7%", actor="judge", previous_task_definition=gone)

    state = judge_rolls_back(return_state=True)

    assert state.is_failed()
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, RollbackIncomplete), failed
    (step,) = failed.failed_steps
    assert f"{gone} is {status} ({GONE[status]})" in step and f"{t.stable_service} runs it too" in step, step
    assert "An error occurred" not in step, step  # named, not botocore's bare ClientError
    assert "run the rollback flow with previous_task_definition set to it" in failed.how, failed.how
    weights, _, canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
    assert canary.desired == 0 and canary.task_definition == release

    # What the step says to do: an ACTIVE copy, given to the rollback flow.
    copy = EcsDeployer(aws.get_client("ecs"), t).register_revision(
        EcsDeployer(aws.get_client("ecs"), t).image_of(gone), gone)
    blocks = saved_blocks(aws, "inactive")
    rollback(reason="finish", previous_task_definition=copy.rsplit("/", 1)[-1], targets_block=blocks,
             aws_credentials_block=blocks)
    assert read_back(aws)[2].task_definition.endswith(copy.rsplit("/", 1)[-1])


@pytest.mark.parametrize("status", ["INACTIVE", "DELETE_IN_PROGRESS"])
@pytest.mark.parametrize("stable_moved", [False, True], ids=["no-active-revision", "stable-runs-another"])
def test_status_of_an_unfinished_rollback_says_abort_finishes_it_only_when_it_can_restore_a_revision(
        aws, capsys, stable_moved, status):
    """`rollway status` said "if no run is finishing it, `rollway abort` does" also when neither the
    recorded revision nor the one stable runs was ACTIVE: every abort then ended with the canary's
    step failed, and only the rollback flow given another revision finishes it."""
    t = aws.targets
    env, gone, stable_now = deregistered_since(aws, stable_moved=stable_moved, status=status)
    record = env.ledger.get(t.canary_service)
    begin_rollback(env.ledger, t.canary_service, actor="judge", reason="error rate 7%", now=env.clock.now(),
                   rollout=record.rollout_id)
    blocks = saved_blocks(aws, "inactive")

    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0

    said = " ".join(capsys.readouterr().out.split())
    if stable_moved:  # the rollback restores the revision stable runs: abort finishes it
        assert "if no run is finishing it, `rollway abort` does" in said, said
    else:
        assert "if no run is finishing it, `rollway abort` does" not in said, said
        assert f"`rollway abort` cannot finish it ({gone}, which {t.canary_service} ran before the rollout, is " \
               f"{status} ({GONE[status]})" in said, said
        assert "run the rollback flow with previous_task_definition set to it" in said, said


@pytest.mark.parametrize("stable_refused, said", [
    (TaskDefinitionInactive("edit-task:7", "canary"), "nor at edit-task:7, which {stable} runs: INACTIVE too"),
    # Refused for good (the task does not ask again): no such revision.
    (TargetNotFound("task definition", "edit-task:7"), "; pointing it at edit-task:7, which {stable} runs, instead "
                                                       "failed: task definition 'edit-task:7' not found"),
], ids=["stable-inactive-too", "stable-refused-otherwise"])
def test_a_rollback_whose_fallback_revision_is_refused_too_names_both(stable_refused, said):
    """The recorded revision INACTIVE, and the one stable runs refused as well: the step names both,
    the canary is still scaled to 0 on what it runs, and the traffic is back (on fakes: ECS's
    refusals are raised as the adapter names them)."""
    env = fake_environment()
    t = env.targets
    env.deployer.services[t.stable_service] = env.deployer.services[t.stable_service].model_copy(
        update={"task_definition": "edit-task:7"})
    env.router.weights = Weights.canary_at(5)
    real_update = env.deployer.update_service

    def refusing(service, *, task_definition=None, desired=None):
        if task_definition == "edit-task:3":
            raise TaskDefinitionInactive(task_definition, service, "TaskDefinition is inactive")
        if task_definition == "edit-task:7":
            raise stable_refused
        return real_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = refusing

    @flow
    def roll_back():
        return execute_rollback(env, "error rate 7%", actor="judge", previous_task_definition="edit-task:3")

    failed = roll_back(return_state=True).result(raise_on_failure=False)

    assert isinstance(failed, RollbackIncomplete), failed
    (step,) = failed.failed_steps
    assert "edit-task:3 is INACTIVE" in step and said.format(stable=t.stable_service) in step, step
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[t.canary_service].desired == 0


def stopped_at_the_canarys_step(aws) -> tuple[str, str]:
    """The judge's rollback of a rollout whose recorded revision and the one stable runs are both
    INACTIVE, stopped at the canary's step with the traffic back. Returns (the deregistered
    revision, the blocks' name)."""
    t = aws.targets
    env, gone, _ = deregistered_since(aws, stable_moved=False)
    record = env.ledger.get(t.canary_service)
    blocks = saved_blocks(aws, "inactive")
    with pytest.raises(RollbackIncomplete):
        rollback(reason="error rate 7%", actor="judge", rollout=record.rollout_id, targets_block=blocks,
                 aws_credentials_block=blocks)
    assert env.ledger.get(t.canary_service).phase is RolloutPhase.ROLLING_BACK
    return gone, blocks


def test_status_of_a_stopped_rollback_abort_cannot_finish_gives_one_advice(
        aws, capsys, ecs_refuses_inactive_revisions):
    """A rollback of a rollout whose recorded revision and the one stable runs are both INACTIVE
    stops at the canary's step, with the traffic back. `rollway status` said `rollway abort` cannot
    finish it and, on the next line, what the stopped run read back and "run the rollback again",
    which fails the same way every time."""
    t = aws.targets
    gone, blocks = stopped_at_the_canarys_step(aws)

    assert ops.status(targets_block=blocks, credentials_block=blocks) == 0

    said = " ".join(capsys.readouterr().out.split())
    assert f"`rollway abort` cannot finish it ({gone}, which {t.canary_service} ran before the rollout" in said, said
    assert "the load balancer read back 100/0 (stable/canary)" in said, said  # the stopped run's line is still there
    assert "run the rollback again" not in said, said
    assert "run `rollway abort`" not in said, said


def test_the_reports_of_a_stopped_rollback_abort_cannot_finish_say_what_status_says(
        aws, capsys, ecs_refuses_inactive_revisions):
    """The same stopped rollback, reported: the rollout and incident reports (`rollway report` and
    the rollout_report flow's artifacts) said "run the rollback again" and "Run `rollway abort` (or
    the rollback flow) to finish it", which fails the same way every time, where `rollway status`
    says `rollway abort` cannot finish it and what does."""
    from flows.reports import rollout_report as report_flow
    from rollway.cli.report import report
    from tests.flows.test_reports_flow import artifacts_of

    t = aws.targets
    gone, blocks = stopped_at_the_canarys_step(aws)
    cannot = f"`rollway abort` cannot finish it ({gone}, which {t.canary_service} ran before the rollout, is INACTIVE"

    assert report(targets_block=blocks, credentials_block=blocks) == 0
    printed = capsys.readouterr().out
    state = report_flow(targets_block=blocks, aws_credentials_block=blocks, return_state=True)
    written = "\n".join(artifacts_of(state).values())

    for said in (printed, written):
        users = " ".join(next(line for line in said.splitlines()
                              if line.startswith("- **Users get since the rollback:**")).split())
        assert "the load balancer read back 100/0 (stable/canary)" in users, users
        assert cannot in users, users
        assert "run the rollback flow with previous_task_definition set to it" in users, users
        flat = " ".join(said.split())
        assert "run the rollback again" not in flat, flat
        assert "Run `rollway abort` (or the rollback flow) to finish it" not in flat, flat
        assert "the rollback run again does what is left" not in flat, flat
