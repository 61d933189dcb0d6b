"""A run whose own rollback put the traffic back and then failed a step (RollbackIncomplete).

The run's rollback paged on-call: the traffic is back, this step failed, run the rollback again
once it can succeed. The run then failed on that error, and its state hook ran the rollback again
at once: with the step still failing (a permission the role lacks), on-call got a second page
saying the same thing. The hook's rollback still runs (a step that failed for a moment may pass
now, and then people are told it is finished), but pages only when something changed.
"""
from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError

from flows.canary import canary
from flows.progressive import progressive_rollout
from rollway.failure_words import writable
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.moto_env import inbox, saved_blocks, simulated
from tests.flows.test_canary_moto import read_back
from tests.flows.test_decommission_page import pages as inbox_pages
from tests.flows.test_hooks_moto import NOT_UTF8, log_reported_writable  # noqa: F401 - a fixture
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC

DENIED = "User: arn:aws:sts::123456789012:assumed-role/rollway is not authorized to perform: ecs:UpdateService"
# The same, from a role whose name holds a byte that is not UTF-8 (decoded with surrogateescape).
DENIED_NOT_UTF8 = DENIED.replace("/rollway", f"/{NOT_UTF8}")


def restore_refused(env, times: int | None) -> list[str]:
    """The canary's restore to its previous revision is refused, ``times`` times (None: always);
    the list returned gets a line for each refusal."""
    refused: list[str] = []
    real_update = env.deployer.update_service

    def update_service(service, *, task_definition=None, desired=None):
        if (service == env.targets.canary_service and task_definition == STABLE_TD
                and (times is None or len(refused) < times)):
            refused.append(service)
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": DENIED}}, "UpdateService")
        return real_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = update_service
    return refused


def rolled_back_by_the_judge(monkeypatch, times: int | None):
    """A progressive run whose canary fails its first stage: the judge rolls it back, and the
    canary's restore is refused ``times`` times. Returns the env, the run's state and the refusals."""
    env = fake_environment(canary_error_rate=0.05)
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    refused = restore_refused(env, times)
    state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)
    return env, state, refused


def rollback_pages(env) -> list[str]:
    return [body for subject, body in env.notifier.messages if subject.startswith("Rollback")]


def test_a_step_still_failing_when_the_hook_runs_the_rollback_again_is_not_paged_twice(monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        env, state, refused = rolled_back_by_the_judge(monkeypatch, times=None)

    assert state.is_failed(), state
    assert len(refused) == 2, "the hook ran the rollback again (a step failing for a moment may pass then)"
    pages = rollback_pages(env)
    assert len(pages) == 1, pages
    assert "FAILED" in pages[0] and "ecs:UpdateService" in pages[0]
    # How to run it again, as the page of a rollback that could not move the traffic says: "Run the
    # rollback again" alone left on-call to find out that `rollway abort` does.
    assert "Run the rollback again (`rollway abort`, or the rollback flow) once the failed step above can succeed" \
        in " ".join(pages[0].split()), pages[0]
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK  # open: `rollway abort` finishes it once the role allows
    assert env.router.weights == Weights(stable=100, canary=0)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "not paged again" in said, said


def test_a_step_that_passes_when_the_hook_runs_the_rollback_again_is_paged_as_finished(monkeypatch):
    env, state, refused = rolled_back_by_the_judge(monkeypatch, times=1)

    assert state.is_failed(), state
    assert len(refused) == 1
    first, second = rollback_pages(env)
    assert "FAILED" in first and "FAILED" not in second, second
    # Why it was rolled back, and that this finishes that rollback: the page said "Why: run x failed:
    # ... RollbackIncomplete: ... run the rollback again once the failed step can succeed", on the
    # page saying it had finished, and the guardrail that began it was nowhere in it.
    why = next(line for line in second.splitlines() if line.startswith("Why: "))
    assert "finishing the rollback" in why and "over the 1% guardrail" in why, why
    assert "ecs:UpdateService" in why and "run the rollback again" not in why and "RollbackIncomplete" not in why, why
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    canary = env.deployer.services[env.targets.canary_service]
    assert canary.desired == 0 and canary.task_definition == STABLE_TD


def test_a_rollback_whose_page_failed_is_paged_by_the_hook_when_it_can(monkeypatch):
    """The run's rollback could not page (SNS refused): its failed steps name notify. The hook's
    rollback, failing the same restore, has not told anybody yet: it pages."""
    env = fake_environment(canary_error_rate=0.05)
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    restore_refused(env, None)
    real_notify = env.notifier.notify
    calls: list[str] = []

    def notify(subject, message):
        calls.append(subject)
        if subject.startswith("Rollback") and len([c for c in calls if c.startswith("Rollback")]) == 1:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized"}}, "Publish")
        return real_notify(subject, message)

    env.notifier.notify = notify
    state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)

    assert state.is_failed(), state
    pages = rollback_pages(env)
    assert len(pages) == 1 and "FAILED" in pages[0], pages


def refusing_on_aws(monkeypatch, aws, *, pages_refused: int, denied: str = DENIED) -> list[str]:
    """On the embedded AWS: ECS always refuses to put the canary back on the revision it ran before
    the rollout (the role lacks the permission, AWS saying ``denied``), and SNS refuses the first
    ``pages_refused`` rollback pages. The list returned gets each refused call's operation."""
    from botocore.client import BaseClient

    canary_service = aws.targets.canary_service
    before = aws.get_client("ecs").describe_services(cluster=aws.targets.cluster, services=[canary_service])
    previous = before["services"][0]["taskDefinition"]
    real = BaseClient._make_api_call
    refused: list[str] = []

    def answered(client, operation, params):
        restore = (operation == "UpdateService" and params.get("service", "").endswith(canary_service)
                   and params.get("taskDefinition") == previous)
        page = (operation == "Publish" and params.get("Subject", "").startswith("Rollback")
                and refused.count("Publish") < pages_refused)
        if restore or page:
            refused.append(operation)
            code, action = ("AccessDeniedException", "ecs:UpdateService") if restore else ("AuthorizationError",
                                                                                          "SNS:Publish")
            raise ClientError({"Error": {"Code": code, "Message": denied.replace("ecs:UpdateService", action)}},
                              operation)
        return real(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", answered)
    return refused


def progressive_refused_on_aws(aws, monkeypatch, *, pages_refused: int, denied: str = DENIED):
    """A progressive run on the embedded AWS whose judge rolls its failing canary back, the canary's
    restore refused (``refusing_on_aws``). Returns the env, the run's state, the refused calls and
    the SNS inbox's url."""
    blocks = saved_blocks(aws)
    url = inbox(aws)
    refused = refusing_on_aws(monkeypatch, aws, pages_refused=pages_refused, denied=denied)
    with simulated(aws, canary_error_rate=0.05) as (env, image):
        settings = {"speed": env.clock.speed, "anchor": env.clock.anchor}
        spec = RolloutSpec(image=image, stages=[Stage(weight=5, bake_seconds=900), Stage(weight=100)])
        state = progressive_rollout(spec=spec.model_dump(mode="json"), phased=False, targets_block=blocks,
                                    aws_credentials_block=blocks, clock=settings, return_state=True)
    return env, state, refused, url


@pytest.mark.parametrize("pages_refused", [0, 1], ids=["paged", "page refused once"])
def test_a_step_still_failing_when_the_hook_runs_the_rollback_again_is_paged_once_on_aws(aws, monkeypatch,
                                                                                        pages_refused):
    """The whole way on the embedded AWS (DynamoDB ledger, SNS topic read through an SQS inbox) and
    the Prefect harness: a progressive run's judge rolls its failing canary back, the canary's
    restore is refused and stays refused, the run fails and its hook runs the rollback again.
    People are paged once: by the run's rollback, or, when SNS refused that page, by the hook's."""
    env, state, refused, url = progressive_refused_on_aws(aws, monkeypatch, pages_refused=pages_refused)

    assert state.is_failed(), state
    assert refused.count("UpdateService") == 2, refused  # the run's rollback, then the hook's
    assert refused.count("Publish") == pages_refused, refused
    pages = [(subject, body) for subject, body in inbox_pages(aws, url) if subject.startswith("Rollback")]
    assert len(pages) == 1, pages
    subject, body = pages[0]
    assert "FAILED" in subject + body and "ecs:UpdateService" in body, pages
    record = env.ledger.get(aws.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK  # open: `rollway abort` finishes it once the role allows
    weights, _stable, _canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)


def test_a_failed_step_whose_text_is_not_utf8_is_paged_once_on_aws(aws, monkeypatch, log_reported_writable):
    """A canary run (no ledger) whose rollback's restore is refused by a role whose name holds a
    byte that is not UTF-8. The run's page could not be sent (its text could not be encoded); once
    it could, its hook, handed the failed steps escaped as the run's failure left it, took the same
    steps, as its own rollback said them, for new ones and paged them again."""
    blocks = saved_blocks(aws)
    url = inbox(aws)
    refused = refusing_on_aws(monkeypatch, aws, pages_refused=0, denied=DENIED_NOT_UTF8)
    with simulated(aws, canary_error_rate=0.05) as (env, image):
        settings = {"speed": env.clock.speed, "anchor": env.clock.anchor}
        spec = RolloutSpec(image=image, stages=[Stage(weight=5, bake_seconds=900), Stage(weight=100)])
        state = canary(spec=spec, targets_block=blocks, aws_credentials_block=blocks, clock=settings,
                       return_state=True)

    assert state.is_failed(), state
    assert refused.count("UpdateService") == 2, refused  # the run's rollback, then the hook's
    pages = [(subject, body) for subject, body in inbox_pages(aws, url) if subject.startswith("Rollback")]
    assert len(pages) == 1, pages
    subject, body = pages[0]
    assert "FAILED" in subject + body and writable(DENIED_NOT_UTF8) in " ".join(body.split()), body
    weights, _stable, _canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)
