"""A "Finalized" notice whose SNS answer was lost (a read timeout after the publish went out: the
SNS notifier raises ``rollway.aws.errors.AnswerLost``): SNS may have delivered it. finalize read
the wrapped error as a refusal, recorded the finalize done with ``notice-failed`` ("the
"Finalized" notice was NOT sent") and said so in its result, `rollway status` and the report. It
now stops at the notice, as for a lost answer botocore raises bare: the run's error says the
publish may have gone out, and a finalize run again sends the notice, saying it may repeat that
one. On the embedded AWS."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from botocore.exceptions import ReadTimeoutError

from rollway.finalize import FinalizeIncomplete, is_finalized
from rollway.ledger import NOTICE_FAILED
from tests.botocore_events import on_operation
from tests.flows.moto_env import inbox
from tests.flows.test_finalize import ALL_STABLE, finalize_on, promote_by_hand
from tests.flows.test_canary_moto import read_back


@contextmanager
def _finalized_answer_lost(aws):
    """SNS takes the "Finalized" notice, and its answer never comes back (a read timeout once moto
    published it), at every try; other publishes are answered."""
    sns, subjects = aws.get_client("sns"), []

    def lose(**_):
        if subjects[-1].startswith("Finalized"):
            raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    with (on_operation(sns, "before-parameter-build",
                       lambda params, **_: subjects.append(str(params.get("Subject", ""))), operation="Publish"),
          on_operation(sns, "after-call", lose, operation="Publish")):
        yield


def _finalized(aws, url: str, *, late: bool = False) -> list[str]:
    """The "Finalized" notices (``late``: the late ones) delivered to the ``inbox`` queue since the
    last call (taken off it)."""
    subject = f"Finalized{' (late)' if late else ''}: {aws.targets.stable_service}"
    sqs, got = aws.get_client("sqs"), []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body["Subject"] == subject:
                got.append(body["Message"])
    return got


def test_a_finalized_notice_whose_answer_was_lost_is_not_recorded_or_said_not_sent(aws):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    url = inbox(aws)
    with _finalized_answer_lost(aws), pytest.raises(FinalizeIncomplete) as stopped:
        finalize_on(env)
    said = " ".join(str(stopped.value).split())
    assert "NOT sent" not in said and "nobody was told" not in said, said
    assert "finalize stopped while it tried to notify: AnswerLost: SNS Publish sent, and its answer lost" in said, said
    assert ('whether the "Finalized" notice was sent is not known (SNS\'s answer was lost: it may have taken it); '
            "a finalize run again sends it again") in said, said
    record = env.ledger.get(aws.targets.canary_service)
    assert record.last_transition(NOTICE_FAILED) is None, record.history
    # SNS took it (at each of the notify task's tries): it went out, though the run could not know.
    first = _finalized(aws, url)
    assert first and not any("This notice may repeat" in m for m in first), first

    # A finalize run again moves nothing, sends the notice again saying it may repeat that one, and
    # records the finalize done.
    before = read_back(aws)
    again = finalize_on(env, actor="bob")
    assert again.outcome == "finalized" and again.notification_id and again.notice_refused is None, again
    assert read_back(aws) == before and before[0] == ALL_STABLE
    (second,) = _finalized(aws, url)
    assert "This notice may repeat one the finalize" in second and release in second, second
    record = env.ledger.get(aws.targets.canary_service)
    assert is_finalized(record) and record.last_transition(NOTICE_FAILED) is None, record.history
