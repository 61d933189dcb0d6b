"""The `monitor` flow started by hand on a rollout's owed window checks the watched queues again.

`progressive_rollout` resuming a monitoring window says when a watched dead-letter queue is gone
(its DLQ-depth alert then watches nothing: CloudWatch reads a missing queue as an empty one). A
person resuming the same window with the `monitor` flow was told nothing, and the window's
dead-letter alert stayed silent whatever the release did.
"""

from __future__ import annotations

import logging

from flows.monitor import monitor
from rollway.aws.sqs import SqsQueues
from rollway.fakes import steady
from rollway.spec import WeeklyPhase
from tests.flows.test_monitor_rollout import SPEC, promoted_world

NOTHING = "dead-letter alert watching nothing"


def _owed_window(monkeypatch, aws):
    plan = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, first = promoted_world(monkeypatch, spec=plan)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # healthy
    env.queues = SqsQueues(aws.get_client("sqs"), env.targets)
    env.clock.sleep(120)  # the run watching the window died; nobody closed it
    return env, first


def test_a_window_resumed_by_hand_after_its_dead_letter_queue_went_says_its_alert_watches_nothing(
        monkeypatch, aws, caplog):
    env, first = _owed_window(monkeypatch, aws)
    sqs = aws.get_client("sqs")
    dlq = env.targets.queues[0].dlq_name
    sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=dlq)["QueueUrl"])  # deleted since the rollout began
    with caplog.at_level(logging.INFO):
        result = monitor(spec=SPEC.model_dump(mode="json"))
    assert result.outcome == "decommissioned", result.reason  # the window goes on, its guardrail still watching
    said = [r.getMessage() for r in caplog.records if NOTHING in r.getMessage()]
    assert len(said) == 1 and dlq in said[0] and first.rollout_id in said[0], said
    record = env.ledger.get(env.targets.canary_service)
    noted = [t for t in record.history if t.comment and NOTHING in t.comment]
    assert len(noted) == 1 and noted[0].kind == "resume" and dlq in noted[0].comment, record.history


def test_a_window_resumed_by_hand_with_its_queues_in_place_says_nothing_of_them(monkeypatch, aws, caplog):
    env, _ = _owed_window(monkeypatch, aws)
    with caplog.at_level(logging.INFO):
        assert monitor(spec=SPEC.model_dump(mode="json")).outcome == "decommissioned"
    assert not [r for r in caplog.records if "dead-letter alert" in r.getMessage()]
    assert [t.kind for t in env.ledger.get(env.targets.canary_service).history if t.kind == "resume"] == []
