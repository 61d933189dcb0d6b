"""A "Finalized" notice whose SNS answer was lost (a read timeout after the publish went out: the
SNS notifier raises ``rollway.aws.errors.AnswerLost``): SNS may have delivered it. finalize read
the wrapped error as a refusal once, recording the notice "NOT sent"; then it stopped at the
notice, failing the run after the stable service carried the traffic and the canary was at 0,
and a finalize run again sent it, saying it may repeat that one. The finalize is done by then: the
notice is now sent once more at once, saying it may repeat the one before (as the rollback's
pages are), and the finalize recorded done. Lost (or refused) again, the run records that whether
it was sent is not known and fails at its end saying so, and a finalize run again sends it late,
saying it may repeat one. On the embedded AWS."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from botocore.exceptions import ReadTimeoutError

from rollway.finalize import FinalizeNoticeRefused, finalized_said, is_finalized, notice_not_sent
from rollway.ledger import NOTICE_FAILED, NOTIFIED
from tasks.metrics import REPEAT
from tests.botocore_events import on_operation
from tests.flows.moto_env import inbox
from tests.flows.test_finalize import ALL_STABLE, finalize_on, promote_by_hand
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize_notice_refused import _publish_refused
from tests.flows.test_finalize_summary import KEY, run
from tests.flows.test_reports_flow import artifacts_of

NOT_KNOWN = 'whether the "Finalized" notice was sent is not known (SNS\'s answer was lost: it may have taken it)'
MAY_REPEAT = "This may repeat a notice sent just before it, whose answer SNS did not give."


@contextmanager
def _finalized_answer_lost(aws, *, repeat_too: bool = True):
    """SNS takes every "Finalized" notice (and, ``repeat_too``, the one sent once more after it,
    "May repeat: Finalized..."), and its answer never comes back (a read timeout once moto
    published it), at every try; other publishes are answered."""
    sns, subjects = aws.get_client("sns"), []

    def lose(**_):
        subject = subjects[-1].removeprefix(REPEAT) if repeat_too else subjects[-1]
        if subject.startswith("Finalized"):
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with (on_operation(sns, "before-parameter-build",
                       lambda params, **_: subjects.append(str(params.get("Subject", ""))), operation="Publish"),
          on_operation(sns, "after-call", lose, operation="Publish")):
        yield


def _finalized(aws, url: str, *, late: bool = False, repeats: bool = False) -> list[str]:
    """The "Finalized" notices (``late``: the late ones; ``repeats``: subjected as ones that may repeat
    one, ``REPEAT``) delivered to the ``inbox`` queue since the last call (taken off it)."""
    subject = f"{REPEAT if repeats else ''}Finalized{' (late)' if late else ''}: {aws.targets.stable_service}"
    return [message for got, message in _delivered(aws, url) if got == subject]


def _delivered(aws, url: str) -> list[tuple[str, str]]:
    """(subject, message) of every notice delivered to the ``inbox`` queue since the last call (taken off it)."""
    sqs, got = aws.get_client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            got.append((body["Subject"], body["Message"]))
    return got


def test_a_finalized_notice_whose_answer_was_lost_is_sent_once_more_and_the_finalize_recorded_done(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _finalized_answer_lost(aws, repeat_too=False):
        result = finalize_on(env)
    assert result.outcome == "finalized" and result.notification_id and result.notice_refused is None, result
    assert "notified" in result.steps, result.steps
    assert read_back(aws)[0] == ALL_STABLE
    # The first went out (its answer lost), and the second says it may repeat it.
    t = aws.targets
    (first, second) = _delivered(aws, url)
    assert first[0] == f"Finalized: {t.stable_service}" and release in first[1], first
    assert second[0] == f"{REPEAT}Finalized: {t.stable_service}", second
    assert second[1] == f"{MAY_REPEAT}\n\n{first[1]}", second
    record = env.ledger.get(t.canary_service)
    assert is_finalized(record) and record.last_transition(NOTICE_FAILED) is None, record.history


def test_a_finalized_notice_lost_twice_is_said_not_known_and_sent_late_by_a_run_again(aws, monkeypatch):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _finalized_answer_lost(aws):
        state = run(monkeypatch, env)
    # The finalize is done and recorded; the run fails at its end, as for a notice SNS refused.
    with pytest.raises(FinalizeNoticeRefused) as failed:
        state.result()
    t = aws.targets
    said = " ".join(str(failed.value).split())
    assert "NOT sent" not in said and "nobody was told" not in said, said
    assert f"is finalized and recorded so: {t.stable_service} runs {release} and carries 100% of the traffic" in said
    assert f"; but {NOT_KNOWN}: AnswerLost: SNS Publish sent, and its answer lost" in said, said
    assert f"Running finalize again sends it late to topic {t.alert_topic} once SNS takes it" in said, said
    summary = " ".join(artifacts_of(state)[KEY].split())
    assert "# Finalized: " in summary and f"**Notice:** {NOT_KNOWN} on `{t.alert_topic}`" in summary, summary
    assert "NOT sent" not in summary, summary
    assert read_back(aws)[0] == ALL_STABLE
    # Both went out, though the run could not know.
    assert [s for s, _ in _delivered(aws, url)] == [f"Finalized: {t.stable_service}",
                                                     f"{REPEAT}Finalized: {t.stable_service}"]
    record = env.ledger.get(t.canary_service)
    assert is_finalized(record), record.history
    kinds = [entry.kind for entry in record.history]
    assert kinds.index(NOTICE_FAILED) > kinds.index("finalized"), kinds
    lost = record.last_transition(NOTICE_FAILED)
    assert lost.actor == "carol", lost
    assert lost.comment.startswith(f"{NOT_KNOWN}: AnswerLost: SNS Publish sent"), lost
    said = notice_not_sent(record, as_left=True)
    assert said.startswith(NOT_KNOWN) and "NOT sent" not in said and "sends it late" in said, said

    # A finalize run again moves nothing, sends it late saying it may repeat one, and records it sent.
    before = read_back(aws)
    again = finalize_on(env, actor="bob")
    assert again.outcome == "already_finalized" and again.notification_id and again.notice_refused is None, again
    assert read_back(aws) == before
    # Subjected as one that may repeat one, as its text says: a mail client shows subjects.
    (late,) = _finalized(aws, url, late=True, repeats=True)
    assert late.startswith("This notice is late, and may repeat one: ") and NOT_KNOWN in late, late
    assert "carol's run" in late, late
    assert env.ledger.get(t.canary_service).history[-1].kind == NOTIFIED


def test_a_late_send_refused_after_the_first_was_lost_twice_does_not_call_it_a_late_send(aws):
    """The notice lost twice, then a late send refused: the refusal names the send that may have
    told people, which was the finalize's own notice, not "an earlier late send"."""
    env, _, _ = promote_by_hand(aws, "start", "promote", "decommission")
    with _finalized_answer_lost(aws):
        finalize_on(env)
    with _publish_refused(aws, []):
        refused = finalize_on(env, actor="dana")
    assert refused.outcome == "already_finalized" and refused.notice_refused is not None, refused
    said = " ".join(finalized_said(refused, aws.targets).split())
    assert "nobody was told" not in said and "late send's" not in said, said
    assert f"; an earlier send's answer was lost: {NOT_KNOWN}: AnswerLost: " in said and "alice's run" in said, said
