"""A pause for a person whose "Rollout waits for a person" notice SNS refuses: nobody is told an
answer is waiting, and by default the pause times out into a rollback. The refusal is recorded on
the rollout (the open pause) for `rollway status` and the report, and said at the top of the form a
person sees in the Prefect UI. It used to be only logged. A notice whose answer SNS lost may have
gone out: said so, not "NOT sent". On the fakes."""

from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import ClientError, ReadTimeoutError

from rollway.approvals import ApprovalAnswer
from rollway.aws.errors import AnswerLost
from rollway.cli.ops import print_status
from rollway.reports import pause_notice_unsent, rollout_report
from tests.flows.test_progressive_fakes import APPROVAL_SPEC, env_with_ledger, progressive_on


def _paused_while_notice_fails(capsys, error: Exception) -> dict[str, str | None]:
    """A promoted rollout whose pause notice fails with ``error``: the form, `rollway status` (its
    line and what it printed) and the report, read while the pause waited."""
    env = env_with_ledger()
    real = env.notifier.notify

    def notify(subject, message):
        if "waits for a person" in subject:
            raise error
        return real(subject, message)

    env.notifier.notify = notify
    seen = {}

    def approver(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        seen.update(summary=summary, status=pause_notice_unsent(record), report=rollout_report(record))
        capsys.readouterr()
        print_status(SimpleNamespace(name=record.service, targets=env.targets), record, record.weights, None, limit=5)
        seen["printed"] = " ".join(capsys.readouterr().out.split())
        return ApprovalAnswer(action="approve", approver="dana")

    assert progressive_on(env, APPROVAL_SPEC, approver).outcome == "promoted"
    # Answered: the pause is closed, and nothing says a notice is owed for it.
    assert pause_notice_unsent(env.ledger.get(env.targets.canary_service)) is None
    return seen


def test_a_refused_pause_notice_is_recorded_and_shown_in_the_form_and_status(capsys):
    seen = _paused_while_notice_fails(capsys, ClientError(
        {"Error": {"Code": "AuthorizationError", "Message": "not authorized to perform: sns:Publish"}}, "Publish"))
    # `rollway status` prints the whole line, not its first letter.
    assert "waiting for a person; the notice was NOT sent: " in seen["printed"], seen["printed"]
    assert "nobody was told it waits" in seen["printed"], seen["printed"]
    assert "NOT sent" in seen["summary"] and "sns:Publish" in seen["summary"], seen["summary"]
    assert seen["summary"].index("NOT sent") < seen["summary"].index("traffic now"), "said first in the form"
    assert seen["status"] is not None and seen["status"].startswith("waiting for a person; the notice was NOT sent: ")
    assert "sns:Publish" in seen["status"], seen["status"]
    assert "notice was NOT sent" in seen["report"] and "sns:Publish" in seen["report"], seen["report"]


def test_a_pause_notice_whose_answer_was_lost_is_said_to_be_maybe_sent_not_unsent(capsys):
    """SNS may have delivered it: "NOT sent" and "nobody was told" were false, and sent whoever
    read them to tell people twice, or to distrust the line."""
    seen = _paused_while_notice_fails(capsys, AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns")))
    maybe = "notice may not have been sent (SNS's answer was lost: it may have delivered it)"
    for where in ("summary", "status", "printed", "report"):
        assert seen[where] is not None and maybe in seen[where], (where, seen[where])
        assert "NOT sent" not in seen[where] and "nobody was told" not in seen[where].lower(), (where, seen[where])
    assert seen["summary"].index(maybe) < seen["summary"].index("traffic now"), "said first in the form"
    assert seen["status"].startswith("waiting for a person; the notice may not have been sent"), seen["status"]


def test_a_pause_whose_notice_went_out_says_nothing_of_a_refusal():
    env = env_with_ledger()
    seen = {}

    def approver(pause, summary):
        seen.update(summary=summary, status=pause_notice_unsent(env.ledger.get(env.targets.canary_service)))
        return ApprovalAnswer(action="approve", approver="dana")

    assert progressive_on(env, APPROVAL_SPEC, approver).outcome == "promoted"
    assert "NOT sent" not in seen["summary"] and seen["status"] is None
