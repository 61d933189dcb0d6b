"""A pause for a person whose "Rollout waits for a person" notice SNS refuses: nobody is told an
answer is waiting, and by default the pause times out into a rollback. The refusal is recorded on
the rollout (the open pause) for `rollway status` and the report, and said at the top of the form a
person sees in the Prefect UI. It used to be only logged. On the fakes."""

from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import ClientError

from rollway.approvals import ApprovalAnswer
from rollway.cli.ops import print_status
from rollway.reports import pause_notice_unsent, rollout_report
from tests.flows.test_progressive_fakes import APPROVAL_SPEC, env_with_ledger, progressive_on


def test_a_refused_pause_notice_is_recorded_and_shown_in_the_form_and_status(capsys):
    env = env_with_ledger()
    real = env.notifier.notify

    def notify(subject, message):
        if "waits for a person" in subject:
            raise ClientError({"Error": {"Code": "AuthorizationError", "Message": "not authorized to perform: "
                                                                                  "sns:Publish"}}, "Publish")
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
    # `rollway status` prints the whole line, not its first letter.
    assert "waiting for a person; the notice was NOT sent: " in seen["printed"], seen["printed"]
    assert "nobody was told it waits" in seen["printed"], seen["printed"]
    assert "NOT sent" in seen["summary"] and "sns:Publish" in seen["summary"], seen["summary"]
    assert seen["summary"].index("NOT sent") < seen["summary"].index("traffic now"), "said first in the form"
    assert seen["status"] is not None and seen["status"].startswith("waiting for a person; the notice was NOT sent: ")
    assert "sns:Publish" in seen["status"], seen["status"]
    assert "notice was NOT sent" in seen["report"] and "sns:Publish" in seen["report"], seen["report"]
    # Answered: the pause is closed, and nothing says a notice is owed for it.
    assert pause_notice_unsent(env.ledger.get(env.targets.canary_service)) is None


def test_a_pause_whose_notice_went_out_says_nothing_of_a_refusal():
    env = env_with_ledger()
    seen = {}

    def approver(pause, summary):
        seen.update(summary=summary, status=pause_notice_unsent(env.ledger.get(env.targets.canary_service)))
        return ApprovalAnswer(action="approve", approver="dana")

    assert progressive_on(env, APPROVAL_SPEC, approver).outcome == "promoted"
    assert "NOT sent" not in seen["summary"] and seen["status"] is None
