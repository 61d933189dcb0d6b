"""The watched queues checked again as a phased rollout goes on, not only at its start.

A week passes between weekly phases. A dead-letter queue deleted meanwhile (or a work queue
deployed again without its RedrivePolicy) reads in CloudWatch as an empty queue: the next phase,
or a resume days later, moved the traffic with the DLQ-depth guardrail watching nothing, and
nothing said so.
"""

from __future__ import annotations

import pytest

from flows.canary import RolloutRefused
from flows.progressive import PhaseRefused
from rollway.approvals import auto_approve
from rollway.fakes import FakeQueues
from rollway.ledger import LockHeld
from rollway.model import Weights
from tests.flows.test_progressive_fakes import (WEEK, _killed_while_monitoring, advance_on, env_with_ledger, full_spec,
                                                killed_while_baking, kinds, progressive_on, shifts)

DLQ = "webordinary-email-dlq"


def test_the_next_phase_is_refused_when_a_dead_letter_queue_was_deleted_since_the_start():
    env = env_with_ledger()
    env.queues = FakeQueues(env.targets)
    assert progressive_on(env, full_spec(), auto_approve("alice"), phased=True).outcome == "holding"
    assert shifts(env) == [5]

    env.queues = FakeQueues(env.targets, missing=[DLQ])  # deleted during the week
    env.clock.sleep(WEEK)
    with pytest.raises(PhaseRefused) as refused:
        advance_on(env, auto_approve("carol"), "cron-1")
    said = str(refused.value)
    assert f"the dead-letter queue {DLQ}" in said and "DLQ-depth guardrail would watch nothing" in said, said
    assert "run advance_phase again" in said and "the traffic stays where it is" in said, said
    assert "`rollway abort`" in said, said
    # Nothing moved, week 2 was not recorded as started (its start is not used up), nothing is held.
    record = env.ledger.get(env.targets.canary_service)
    assert shifts(env) == [5] and env.router.weights == Weights(stable=95, canary=5)
    assert record.weekly_phase_index == 0 and record.weekly_phase_passed and record.owner is None

    env.queues = FakeQueues(env.targets)  # restored: the same week's next run starts week 2
    assert advance_on(env, auto_approve("carol"), "cron-2").outcome == "holding"
    assert shifts(env) == [5, 25, 50]


def test_a_resume_is_refused_when_a_work_queue_lost_its_redrive_policy_since_the_start():
    env = env_with_ledger()
    env.queues = FakeQueues(env.targets)
    killed_while_baking(env, 25, auto_approve("alice"), phased=False)
    assert shifts(env) == [5, 25]

    env.queues = FakeQueues(env.targets, redrives={"webordinary-edit-input": ""})
    env.clock.sleep(601)  # the dead run's lease ran out
    with pytest.raises(RolloutRefused) as refused:
        progressive_on(env, full_spec(), auto_approve("bob"), owner="run-2", phased=False)
    said = str(refused.value)
    assert "the work queue webordinary-edit-input has no RedrivePolicy" in said, said
    assert "run progressive_rollout again" in said and "the traffic stays where it is" in said, said
    assert shifts(env) == [5, 25] and env.router.weights.canary == 25


def test_a_retry_of_the_dead_run_itself_is_refused_too_when_a_queue_went_since_the_start():
    """The UI's Retry (or `prefect flow-run retry`) runs the same flow run again: the rollout's
    recorded owner is this run, days after its process died, and its queues were not checked."""
    env = env_with_ledger()
    env.queues = FakeQueues(env.targets)
    killed_while_baking(env, 25, auto_approve("alice"), phased=False)
    assert shifts(env) == [5, 25] and env.ledger.get(env.targets.canary_service).owner == "run-1"

    env.queues = FakeQueues(env.targets, missing=[DLQ])
    env.clock.sleep(WEEK)
    with pytest.raises(RolloutRefused) as refused:
        progressive_on(env, full_spec(), auto_approve("bob"), owner="run-1", phased=False)
    said = str(refused.value)
    assert f"the dead-letter queue {DLQ}" in said and "run progressive_rollout again" in said, said
    assert shifts(env) == [5, 25] and env.router.weights.canary == 25


def test_the_weekly_ticks_resume_refused_on_a_queue_says_to_run_advance_phase_again():
    """The tick resumes a phase whose run died, and a queue went meanwhile: its refusal said to "run
    progressive_rollout again", a flow nobody had run for this and that needs the rollout's image
    given again. The tick's own refusal names the tick: advance_phase resumes it once the queue is back."""
    env = env_with_ledger()
    env.queues = FakeQueues(env.targets)
    killed_while_baking(env, 25, auto_approve("alice"), phased=False)
    assert shifts(env) == [5, 25]

    env.queues = FakeQueues(env.targets, missing=[DLQ])
    env.clock.sleep(601)  # the dead run's lease ran out
    with pytest.raises(RolloutRefused) as refused:
        advance_on(env, auto_approve("carol"), "cron-1")
    said = str(refused.value)
    assert f"the dead-letter queue {DLQ}" in said and "run advance_phase again" in said, said
    assert "progressive_rollout" not in said, said
    assert shifts(env) == [5, 25] and env.router.weights.canary == 25

    env.queues = FakeQueues(env.targets)  # restored: advance_phase run again resumes it
    assert advance_on(env, auto_approve("carol"), "cron-2").outcome == "promoted"


def test_a_monitoring_window_resumed_after_its_dead_letter_queue_went_says_its_alert_watches_nothing(caplog):
    """The run watching the promoted release died; the weekly tick resumes the window a while later,
    its dead-letter queue deleted meanwhile. The window's dead-letter alert read that queue as an empty
    one, and nothing said so. Not refused (that left the window, its error-rate guardrail and the
    decommission unwatched): the window goes on, and the run's log and the rollout's ledger say it."""
    env, _ = _killed_while_monitoring()
    env.queues = FakeQueues(env.targets, missing=[DLQ])  # deleted since the rollout checked it
    env.clock.sleep(601)  # the dead run's lease ran out
    with caplog.at_level("WARNING"):
        result = advance_on(env, auto_approve("carol"), "cron-1")
    assert result.outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    said = [r.getMessage() for r in caplog.records if "dead-letter alert watching nothing" in r.getMessage()]
    assert len(said) == 1 and f"SQS did not find the dead-letter queue {DLQ}" in said[0], said
    assert "the window goes on" in said[0], said
    record = env.ledger.get(env.targets.canary_service)
    noted = [t for t in record.history if t.comment and "dead-letter alert watching nothing" in t.comment]
    assert len(noted) == 1 and DLQ in noted[0].comment and noted[0].actor == "schedule", noted
    assert record.owner is None, "the lease was given back at the window's end"


def test_a_run_refused_a_window_another_run_watches_says_nothing_of_its_dead_letter_alert(caplog):
    """Another run, alive, watches the window: this one is refused (LockHeld) before it says the window
    it does not watch has its dead-letter alert watching nothing, and it records nothing."""
    env, spec = _killed_while_monitoring()
    env.queues = FakeQueues(env.targets, missing=[DLQ])
    before = len(env.ledger.get(env.targets.canary_service).history)
    with caplog.at_level("WARNING"), pytest.raises(LockHeld):
        progressive_on(env, spec, auto_approve(), owner="run-2", finished=lambda owner: False)
    assert not [r for r in caplog.records if "dead-letter alert watching nothing" in r.getMessage()]
    assert len(env.ledger.get(env.targets.canary_service).history) == before


def test_a_resumed_window_whose_queue_check_sqs_did_not_answer_is_not_said_to_watch_nothing(caplog):
    """SQS throttled the resumed window's look-up of the watched queues: nothing says a queue is gone.
    The log and the ledger said the window's dead-letter alert "watching nothing" and to fix the
    targets block's queues, a claim nobody could make and a fix for queues that are there. They say
    the queues could not be checked, that the alert watches nothing only should one be gone, and how
    to look; the window goes on."""
    env, _ = _killed_while_monitoring()
    env.queues = FakeQueues(env.targets, failing="Throttling: Rate exceeded")
    env.clock.sleep(601)  # the dead run's lease ran out
    with caplog.at_level("WARNING"):
        result = advance_on(env, auto_approve("carol"), "cron-1")
    assert result.outcome == "promoted" and kinds(env)[-2:] == ["decommission", "decommission-paged"]
    said = [r.getMessage() for r in caplog.records if "dead-letter alert" in r.getMessage()]
    assert len(said) == 1 and "Throttling: Rate exceeded" in said[0], said
    assert "watching nothing" not in said[0] and "Fix the targets block's queues" not in said[0], said
    assert "could not be checked" in said[0] and "the window goes on" in said[0], said
    record = env.ledger.get(env.targets.canary_service)
    noted = [t for t in record.history if t.comment and "dead-letter alert" in t.comment]
    assert len(noted) == 1 and noted[0].comment == said[0], noted
