"""The rollback flow run by hand with a targets block naming a service ECS does not have (a typo:
`webordinary-edti-service-canary`), no rollout of it recorded and no traffic on the canary.

It paged every subscriber of the alert topic "Rollback FAILED: <the misspelt service>", saying the
traffic could NOT be moved back (the load balancer held 100/0 all along) and to run it again
"once <the misspelt service> can take the traffic". It is refused instead, naming the service ECS
does not know, saying nothing was changed and nobody paged.
"""
from __future__ import annotations

import logging
from uuid import uuid4

import pytest

from blocks.credentials import credentials_for_endpoint
from blocks.targets import RollwayTargets
from flows.rollback import RollbackRefused, rollback
from rollway.model import Weights
from tests.flows.moto_env import inbox
from tests.flows.test_canary_moto import read_back


@pytest.mark.parametrize("field", ["canary_service", "stable_service"])
def test_a_service_ecs_does_not_have_is_refused_without_paging_anyone(aws, caplog, field):
    url = inbox(aws)
    misspelt = getattr(aws.targets, field).replace("edit", "edti")
    targets = aws.targets.model_copy(update={field: misspelt})
    name = f"typo-{uuid4().hex[:8]}"
    RollwayTargets(**targets.model_dump()).save(name, overwrite=True)
    credentials_for_endpoint(aws.endpoint_url, targets.region).save(name, overwrite=True)

    with caplog.at_level(logging.ERROR):
        state = rollback(reason="errors", targets_block=name, aws_credentials_block=name, return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RollbackRefused), refused
    said = " ".join(str(refused).split())
    assert f"ECS has no service '{misspelt}' in cluster {targets.cluster}" in said, said
    assert "Nothing was changed, and nobody was paged" in said and "targets block" in said, said
    assert "can take the traffic" not in said, said
    pages = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert pages == [], [p["Body"][:200] for p in pages]
    assert read_back(aws)[0] == Weights(stable=100, canary=0)
    traced = [r for r in caplog.records if isinstance((r.exc_info or (None, None))[1], RollbackRefused)]
    assert traced == [], [r.getMessage() for r in traced]


def test_a_service_ecs_does_not_have_with_the_load_balancer_unanswered_is_paged_to_run_again_once_ecs_has_it(
        monkeypatch):
    """Not refused (the load balancer did not say where the traffic is), it is paged: to run it again
    "once <stable> can take the traffic", which no wait for stable puts right."""
    from rollway.aws.errors import TargetNotFound
    from rollway.fakes import FakeDeployer
    from tests.flows.fake_env import fake_environment
    from tests.flows.test_abort_failed_rollback import SilentAfterWrite
    from tests.flows.test_rollback_move_not_read_back import paged

    class Misspelt(FakeDeployer):
        def describe(self, service):
            if service not in self.services:
                raise TargetNotFound("ECS service", service, "in cluster webordinary")
            return super().describe(service)

    env = fake_environment()
    canary = env.targets.canary_service
    env.deployer.__class__ = Misspelt
    del env.deployer.services[canary]
    env.router = SilentAfterWrite(Weights.canary_at(25))
    env.router.written.set()  # no read answered
    page, flat = paged(monkeypatch, env, TargetNotFound)
    assert "can take the traffic" not in flat, page
    assert ("Run the rollback again (the `rollback` flow (the rollback deployment); `rollway abort` rolls back only "
            "rollouts the ledger records, and has none to roll back here) once ECS has the service the error above "
            "names (check the service and cluster names in the targets block): until then it fails the same way, moving "
            "no traffic." in flat), page
