"""A "Finalized" notice whose publish finalize stopped waiting for (SNS did not answer within the
run's ``write_seconds``): SNS may have taken it. A late send given up on was recorded as "SNS's
answer was lost", which it was not (no answer was lost: the run stopped waiting for one). It now
says the run stopped waiting, and the next late send still says it may repeat that one. A first
send given up on records no ``notice-failed`` (the run stops before its ``finalized``), so every
such entry after ``finalized`` is a late send's. On the fakes: the wait is the flow's own."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import pytest
from botocore.exceptions import ClientError

from rollway.finalize import FinalizeIncomplete, notice_not_sent
from rollway.ledger import NOTICE_FAILED, NOTIFIED
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
    with _silent(env), pytest.raises(FinalizeIncomplete):
        finalize_bounded(env, write_seconds=0.3)
    record = env.ledger.get(env.targets.canary_service)
    entry = record.last_transition(NOTICE_FAILED)
    assert entry.comment.startswith(f"{UNANSWERED}: SNS (topic "), entry
    assert "answer was lost" not in entry.comment, entry
    said = notice_not_sent(record, as_left=True)
    assert said.startswith(UNANSWERED) and "answer was lost" not in said, said

    # Refused after it: that send is named as a wait stopped, not as a lost answer.
    with _refused(env):
        refused = finalize_bounded(env, write_seconds=5)
    assert refused.notice_lost_before.startswith("; finalize stopped waiting for SNS's answer to an earlier late "
                                                 f"send: {UNANSWERED}"), refused.notice_lost_before

    again = finalize_bounded(env, write_seconds=5)
    assert again.outcome == "already_finalized" and again.notification_id, again
    subject, late = env.notifier.messages[-1]
    assert subject.startswith("Finalized (late)") and late.startswith("This notice is late, and may repeat one: "), late
    assert env.ledger.get(env.targets.canary_service).history[-1].kind == NOTIFIED


def test_a_first_send_given_up_on_records_no_notice_failed_for_a_later_run_to_call_a_late_send():
    env, _ = promoted_on_fakes()
    with _silent(env), pytest.raises(FinalizeIncomplete):
        finalize_bounded(env, write_seconds=0.3)
    record = env.ledger.get(env.targets.canary_service)
    assert record.last_transition(NOTICE_FAILED) is None, record.history
    done = finalize_bounded(env, write_seconds=5)
    assert done.outcome == "finalized" and done.notice_refused is None and not done.notice_lost_before, done
