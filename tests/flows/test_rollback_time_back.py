"""How long the traffic took to get back on stable: the incident's first question, answered by the
rollback itself (its page, its log and its result), from its start to the load balancer's read-back
of all the traffic on stable, not to the end of its later steps (the canary, the flags, the page).
"""
from __future__ import annotations

import logging

from flows.rollback import rollback
from rollway.fakes import FakeLedger, FakeRouter
from rollway.model import Weights
from tests.flows.test_rollback_claim import rolling_back


class SlowMove(FakeRouter):
    """A move of the weights the load balancer takes 42 s over (a throttled ModifyRule sent again)."""

    clock = None

    def set_weights(self, weights: Weights) -> Weights:
        self.clock.sleep(42.0)
        return super().set_weights(weights)


def test_the_rollback_says_how_long_the_traffic_took_to_get_back_on_stable(monkeypatch, caplog):
    env, _ = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    slow = SlowMove(weights=env.router.weights, healthy=env.router.healthy)
    slow.clock, env.router = env.clock, slow
    notify = env.notifier.notify

    def slow_page(subject, message):  # SNS slow to answer: after the traffic is back, not part of it
        env.clock.sleep(300.0)
        return notify(subject, message)

    env.notifier.notify = slow_page
    with caplog.at_level(logging.INFO):
        result = rollback(reason="abort")
    assert result.weights == Weights(stable=100, canary=0)
    assert result.traffic_back_seconds == 42.0, result.traffic_back_seconds
    (_, page), = env.notifier.messages
    assert "42 s after this rollback began" in page, page
    said = [r.getMessage() for r in caplog.records]
    assert any("42 s after this rollback began" in m for m in said), said
