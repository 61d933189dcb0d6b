"""A "Finalized" notice whose publish finalize stopped waiting for (SNS did not answer within the
run's ``write_seconds``): SNS may have taken it. A late send given up on was recorded as "SNS's
answer was lost", which it was not (no answer was lost: the run stopped waiting for one). It now
says the run stopped waiting, and the next late send still says it may repeat that one.

A send given up on stopped its run, though the finalize was done: the first notice's before the
run recorded ``finalized`` (the rollout held up the next one until a run again finished it), a late
one part-way ("finalize stopped while it tried to send the notice owed"). Either is now recorded as
not known, the finalize done, and the run fails at its end saying so, as for a lost answer. On the
fakes: the wait is the flow's own."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from rollway.aws.errors import AnswerLost
from rollway.finalize import finalized_said, is_finalized, notice_not_sent
from rollway.ledger import NOTICE_FAILED, NOTIFIED
from tasks.metrics import REPEAT
from tests.flows.test_finalize import finalize_bounded, promoted_on_fakes

UNANSWERED = ('whether the "Finalized" notice was sent is not known (finalize stopped waiting for SNS\'s answer: '
              "it may have taken it)")


@contextmanager
def _silent(env):
    """SNS answers no publish within the run's bound (it takes it after the run stopped waiting)."""
    answering, real = threading.Event(), env.notifier.notify

    def silent(subject, message):
        answering.wait(5)
        return real(subject, message)

    env.notifier.notify = silent
    try:
        yield
    finally:
        answering.set()
        env.notifier.notify = real


@contextmanager
def _refused(env):
    real = env.notifier.notify

    def refuse(subject, message):
        raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized"}}, "Publish")

    env.notifier.notify = refuse
    try:
        yield
    finally:
        env.notifier.notify = real


def test_a_late_send_given_up_on_is_recorded_as_a_wait_stopped_not_a_lost_answer():
    env, _ = promoted_on_fakes()
    with _refused(env):
        first = finalize_bounded(env, write_seconds=5)
    assert first.outcome == "finalized" and first.notice_refused, first
    with _silent(env):
        late = finalize_bounded(env, write_seconds=0.3)
    assert late.outcome == "already_finalized" and late.notice_lost and late.notice_unanswered, late
    said = " ".join(finalized_said(late, env.targets).split())
    assert f"; but {UNANSWERED}: SNS (topic " in said and "Running finalize again sends it late" in said, said
    assert any(step.startswith(f"late: {UNANSWERED}") for step in late.steps), late.steps
    record = env.ledger.get(env.targets.canary_service)
    entry = record.last_transition(NOTICE_FAILED)
    assert entry.comment.startswith(f"{UNANSWERED}: SNS (topic "), entry
    assert "answer was lost" not in entry.comment, entry
    said = notice_not_sent(record, as_left=True)
    assert said.startswith(UNANSWERED) and "answer was lost" not in said, said

    # Refused after it: that send is named as a wait stopped, not as a lost answer.
    with _refused(env):
        refused = finalize_bounded(env, write_seconds=5)
    assert refused.notice_lost_before.startswith("; finalize stopped waiting for SNS's answer to an earlier "
                                                 f"send: {UNANSWERED}"), refused.notice_lost_before

    again = finalize_bounded(env, write_seconds=5)
    assert again.outcome == "already_finalized" and again.notification_id, again
    subject, late = env.notifier.messages[-1]
    assert late.startswith("This notice is late, and may repeat one: "), late
    # Its subject says so too, as every notice's that may repeat one does: a mail client shows subjects.
    assert subject == f"{REPEAT}Finalized (late): {env.targets.stable_service}", subject
    assert env.ledger.get(env.targets.canary_service).history[-1].kind == NOTIFIED


def test_a_late_send_given_up_on_after_an_earlier_send_given_up_on_is_said_as_the_late_one():
    """Its step and warning, beside the earlier send named after it, read as the first notice's:
    "late: " was left off a late send whose answer is not known when an earlier one's was not either."""
    env, _ = promoted_on_fakes()
    with _silent(env):
        first = finalize_bounded(env, write_seconds=0.3)
    assert first.notice_unanswered, first
    with _silent(env):
        late = finalize_bounded(env, write_seconds=0.3)
    assert late.outcome == "already_finalized" and late.notice_unanswered and late.notice_lost_before, late
    assert any(step.startswith(f"late: {UNANSWERED}") for step in late.steps), late.steps


def test_a_first_send_given_up_on_records_the_finalize_done_and_a_run_again_sends_it_late_saying_it_may_repeat():
    env, _ = promoted_on_fakes()
    with _silent(env):
        result = finalize_bounded(env, write_seconds=0.3)
    assert result.outcome == "finalized" and result.notice_lost and result.notice_unanswered, result
    said = " ".join(finalized_said(result, env.targets).split())
    assert f"; but {UNANSWERED}: SNS (topic " in said and "Running finalize again sends it late" in said, said
    record = env.ledger.get(env.targets.canary_service)
    assert is_finalized(record), record.history
    entry = record.last_transition(NOTICE_FAILED)
    assert entry.comment.startswith(f"{UNANSWERED}: SNS (topic "), entry

    again = finalize_bounded(env, write_seconds=5)
    assert again.outcome == "already_finalized" and again.notification_id and again.notice_refused is None, again
    (late,) = [message for subject, message in env.notifier.messages
               if subject == f"{REPEAT}Finalized (late): {env.targets.stable_service}"]
    assert late.startswith(f"This notice is late, and may repeat one: {UNANSWERED}"), late
    assert env.ledger.get(env.targets.canary_service).history[-1].kind == NOTIFIED


def test_a_first_send_given_up_on_whose_answer_is_lost_after_is_not_sent_once_more_behind_the_runs_back():
    """The run stopped waiting for its publish, recorded the notice as not known and ended; the publish
    went on in its thread, lost its answer there, and ``notify_or_repeat`` sent it once more ("May
    repeat: ...") after the run had said what came of it, a send whose outcome nothing logged or
    recorded. Not sent again once the run stopped waiting: a finalize run again sends it late, saying
    it may repeat one."""
    env, _ = promoted_on_fakes()
    t, answering, real = env.targets, threading.Event(), env.notifier.notify

    def lost_past_the_bound(subject, message):
        real(subject, message)
        answering.wait(5)
        raise AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns.us-west-2.amazonaws.com"))

    env.notifier.notify = lost_past_the_bound
    try:
        result = finalize_bounded(env, write_seconds=0.3)
    finally:
        answering.set()
    for publishing in [th for th in threading.enumerate() if th.name == "rollway-write"]:
        publishing.join(10)
    env.notifier.notify = real
    assert result.outcome == "finalized" and result.notice_unanswered, result
    assert [subject for subject, _ in env.notifier.messages] == [f"Finalized: {t.stable_service}"]

    again = finalize_bounded(env, write_seconds=5)
    assert again.outcome == "already_finalized" and again.notification_id, again
    subject, late = env.notifier.messages[-1]
    assert subject == f"{REPEAT}Finalized (late): {t.stable_service}", subject
    assert late.startswith(f"This notice is late, and may repeat one: {UNANSWERED}"), late


def test_a_notice_not_sent_as_the_runs_lease_lapsed_stops_the_run_at_it_not_said_as_perhaps_sent(monkeypatch):
    """A publish under this run's lease is not sent once the lease has lapsed (``_written``): that
    is no wait given up on, and was said as one ("not known ... it may have taken it") of a notice
    nobody sent, before a ``finalized`` the run could no longer record. The run stops at the notice,
    saying it was not sent, and a run again finishes the finalize and sends it."""
    import flows.finalize as finalizing
    from rollway.finalize import FinalizeIncomplete

    monkeypatch.setattr(finalizing, "ROOM", 0.4)
    env, _ = promoted_on_fakes()
    t = env.targets
    real_update = env.deployer.update_service

    def then_past_the_lease(service, **changes):
        done = real_update(service, **changes)
        if service == t.canary_service:
            env.clock.sleep(30 + 300 + 0.3 + 1.0)  # the waits' bounds and ROOM, all used
        return done

    env.deployer.update_service = then_past_the_lease
    with pytest.raises(FinalizeIncomplete) as stopped:
        finalize_bounded(env, write_seconds=5)
    said = str(stopped.value)
    assert (f"finalize stopped while it tried to notify: Unanswered: SNS (topic {t.alert_topic!r}) was not sent: this "
            "run's lease of the rollout lapsed at ") in said, said
    assert "not known" not in said and "may have taken it" not in said, said
    assert env.notifier.messages == []
    assert not is_finalized(env.ledger.get(t.canary_service))


def test_a_refusal_whose_entry_the_ledger_did_not_answer_in_time_is_not_said_to_be_owed_by_no_run():
    """The ``notice-failed`` write given up on (the run's ``write_seconds``) may still land, and then
    a finalize run again sends the notice late: the run's error said "no finalize run sends it late"."""
    env, _ = promoted_on_fakes()
    landed, real = threading.Event(), env.ledger.record

    def slow_on_notice_failed(service, **kwargs):
        stored = real(service, **kwargs)
        if kwargs["transition"].kind == NOTICE_FAILED:
            landed.set()
            threading.Event().wait(1.0)  # stored, and answered past the run's bound
        return stored

    env.ledger.record = slow_on_notice_failed
    with _refused(env):
        first = finalize_bounded(env, write_seconds=0.5)
    assert first.outcome == "finalized" and first.notice_refused and first.notice_unrecorded, first
    said = " ".join(finalized_said(first, env.targets).split())
    assert "no finalize run sends it late" not in said, said
    assert "so a finalize run again may send nothing" in said, said

    assert landed.wait(10)
    env.ledger.record = real
    again = finalize_bounded(env, write_seconds=5)
    assert again.outcome == "already_finalized" and again.notification_id, again


def test_a_late_refusal_the_ledger_could_not_record_is_logged_as_leaving_the_earlier_entry_not_none(caplog):
    """The earlier ``notice-failed`` stands: `rollway status` shows it (and the notice owed), not "it
    finalized without saying so", as was logged of a late send refused whose own entry failed."""
    env, _ = promoted_on_fakes()
    with _refused(env):
        finalize_bounded(env, write_seconds=5)
    real = env.ledger.record

    def throttled_on_notice_failed(service, **kwargs):
        if kwargs["transition"].kind == NOTICE_FAILED:
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")
        return real(service, **kwargs)

    env.ledger.record = throttled_on_notice_failed
    with _refused(env):
        late = finalize_bounded(env, write_seconds=5)
    assert late.outcome == "already_finalized" and late.notice_refused, late
    (said,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("finalize: could not record")]
    assert "that its late notice was not sent (" in said, said
    assert "without saying so" not in said and "`rollway status` shows the earlier send's failure alone" in said, said
