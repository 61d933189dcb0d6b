"""A run whose own rollback put the traffic back and then failed a step (RollbackIncomplete).

The run's rollback paged on-call: the traffic is back, this step failed, run the rollback again
once it can succeed. The run then failed on that error, and its state hook ran the rollback again
at once: with the step still failing (a permission the role lacks), on-call got a second page
saying the same thing. The hook's rollback still runs (a step that failed for a moment may pass
now, and then people are told it is finished), but pages only when something changed.
"""
from __future__ import annotations

import logging

from botocore.exceptions import ClientError

from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.model import Weights
from rollway.phases import RolloutPhase
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC

DENIED = "User: arn:aws:sts::123456789012:assumed-role/rollway is not authorized to perform: ecs:UpdateService"


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
