"""The "Finalized" notice owed (SNS refused it once, ``notice-failed``), sent late by a finalize run
again whose SNS answer was lost: SNS may have delivered it. A finalize run after it sent the late
notice again saying only that it was late, where people may have had one already. The lost answer is
now recorded (``notice-failed``, saying whether it was sent is not known), and the next late notice
says it may repeat one. The run stopped there ("finalize stopped while it tried to send the notice
owed"), of a rollout finalized already: it now ends as a late send refused does, failing at its end
saying the finalize is done and whether the notice went out is not known. On the embedded AWS."""

from __future__ import annotations

import pytest

from rollway.finalize import FinalizeNoticeRefused, finalized_said, notice_not_sent
from rollway.ledger import NOTICE_FAILED, NOTIFIED
from rollway.reports import finalize_row, rollout_report
from tests.flows.moto_env import inbox
from tests.flows.test_finalize import finalize_on, promote_by_hand
from tests.flows.test_finalize_notice_answer_lost import _finalized, _finalized_answer_lost
from tests.flows.test_finalize_notice_refused import _publish_refused
from tests.flows.test_finalize_summary import KEY, run
from tests.flows.test_reports_flow import artifacts_of

NOT_KNOWN = 'whether the "Finalized" notice was sent is not known (SNS\'s answer was lost: it may have taken it)'
# A late send's refusal after one that lost its answer: that one may have told them.
LATE_NOT_SENT = 'the late "Finalized" notice was NOT sent: '


def test_a_late_notice_sent_again_after_a_lost_answer_says_it_may_repeat_one(aws):
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _publish_refused(aws, []):
        finalize_on(env)
    with _finalized_answer_lost(aws):
        lost = finalize_on(env, actor="bob")
    assert lost.outcome == "already_finalized" and lost.notice_lost and not lost.notice_unanswered, lost
    said = " ".join(finalized_said(lost, aws.targets).split())
    assert f"; but {NOT_KNOWN}: AnswerLost: " in said and "Running finalize again sends it late" in said, said
    first = _finalized(aws, url, late=True)
    assert first and not any("may repeat one" in m for m in first), first
    record = env.ledger.get(aws.targets.canary_service)
    lost = record.last_transition(NOTICE_FAILED)
    assert lost.actor == "bob" and lost.comment.startswith(f"{NOT_KNOWN}: AnswerLost: SNS Publish sent"), lost
    # Status and the report say it as it is: not "NOT sent", and still owed.
    said = notice_not_sent(record, as_left=True)
    assert said.startswith(NOT_KNOWN) and "NOT sent" not in said and "sends it late" in said, said

    again = finalize_on(env, actor="carol")
    assert again.outcome == "already_finalized" and again.notification_id, again
    (late,) = _finalized(aws, url, late=True, repeats=True)
    assert late.startswith("This notice is late, and may repeat one: "), late
    assert NOT_KNOWN in late and "bob's run" in late, late
    record = env.ledger.get(aws.targets.canary_service)
    assert record.history[-1].kind == NOTIFIED, record.history


def _refused_then_lost(aws):
    """A rollout finalized with its notice refused, then a late send whose answer was lost (bob's)."""
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _publish_refused(aws, []):
        finalize_on(env)
    with _finalized_answer_lost(aws):
        finalize_on(env, actor="bob")
    return env


def test_a_late_send_refused_after_one_that_lost_its_answer_does_not_say_only_that_nobody_was_told(aws):
    """Refused, then a late send whose answer was lost (it may have gone out), then a late send
    refused: the run's error and summary (``finalized_said``) quoted the newest refusal alone, "NOT
    sent, nobody was told", of a notice the lost send may have delivered. They name that send too."""
    from rollway.finalize import finalized_said

    env = _refused_then_lost(aws)
    with _publish_refused(aws, []):
        refused = finalize_on(env, actor="dana")
    assert refused.outcome == "already_finalized" and refused.notice_refused is not None, refused
    said = " ".join(finalized_said(refused, aws.targets).split())
    assert f"; but {LATE_NOT_SENT}" in said and "nobody was told" not in said, said
    assert f"; an earlier send's answer was lost: {NOT_KNOWN}: AnswerLost: " in said and "bob's run" in said, said
    for step in refused.steps:
        assert "nobody was told" not in step, refused.steps
    assert any(step.startswith(LATE_NOT_SENT) and "bob's run" in step for step in refused.steps), refused.steps


def test_a_late_send_refused_after_one_that_lost_its_answer_is_not_said_to_have_left_nobody_told(aws, monkeypatch):
    """The same history, the last late send by the finalize flow: its error, its summary (and the
    steps listed there), `rollway status` and the report said "NOT sent, nobody was told" first, of a
    notice the lost send may have delivered."""
    env = _refused_then_lost(aws)
    with _publish_refused(aws, []):
        state = run(monkeypatch, env)
    with pytest.raises(FinalizeNoticeRefused) as failed:
        state.result()
    record = env.ledger.get(aws.targets.canary_service)
    refused = record.history[-1]
    assert refused.kind == NOTICE_FAILED and refused.comment.startswith(LATE_NOT_SENT), record.history
    report = rollout_report(record)
    # Its transitions quote each entry: only the first refusal, of the notice nobody had, says so.
    assert report.count("nobody was told") == 1, report
    (outcome,) = (line for line in report.splitlines() if line.startswith("- **Outcome:**"))
    texts = {"error": str(failed.value), "summary": artifacts_of(state)[KEY], "status": finalize_row(record),
             "report": outcome}
    for where, said in texts.items():
        said = " ".join(said.split())
        assert "nobody was told" not in said, (where, said)
        assert LATE_NOT_SENT in said and f"an earlier send's answer was lost: {NOT_KNOWN}: " in said, (where, said)
        assert "bob's run" in said, (where, said)


def test_a_late_send_whose_answer_was_lost_fails_the_flow_at_its_end_saying_the_finalize_is_done(aws, monkeypatch,
                                                                                                  caplog):
    """Its state message, its summary and its log say the rollout is finalized and that whether the
    notice went out is not known; not that finalize stopped part-way."""
    import logging

    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _publish_refused(aws, []):
        finalize_on(env)
    with _finalized_answer_lost(aws), caplog.at_level(logging.WARNING):
        state = run(monkeypatch, env)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith(f"finalize: late: {NOT_KNOWN}") for m in warned), warned
    with pytest.raises(FinalizeNoticeRefused) as failed:
        state.result()
    said = " ".join(str(failed.value).split())
    assert "is finalized and recorded so" in said and f"; but {NOT_KNOWN}: AnswerLost: " in said, said
    assert "stopped" not in said and "Running finalize again sends it late" in said, said
    summary = " ".join(artifacts_of(state)[KEY].split())
    assert "# Already finalized, nothing changed: " in summary and f"**Notice:** {NOT_KNOWN}" in summary, summary
    record = env.ledger.get(aws.targets.canary_service)
    assert record.history[-1].kind == NOTICE_FAILED and record.history[-1].comment.startswith(NOT_KNOWN), record.history
