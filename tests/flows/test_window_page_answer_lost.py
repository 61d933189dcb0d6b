"""A page of the monitoring window's end ("Decommission skipped", ...) whose SNS answer was lost (a
read timeout, a connection dropped after the request went out: ``rollway.aws.errors.AnswerLost``):
SNS may have delivered it. The run's result, its log, the ledger's entry, `rollway status` and the
report said it "was NOT sent, nobody was told", and asked to mend what SNS refused, where nobody
knows whether people were paged."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from botocore.exceptions import ReadTimeoutError

from flows.monitor import DecommissionPageRefused, WindowPageRefused
from rollway.aws.errors import AnswerLost
from rollway.cli.ops import print_status
from rollway.reports import rollout_report
from rollway.window_page import WINDOW_PAGE_REFUSED
from tests.flows.test_monitor_rollout import resume_the_window, run_monitor_flow
from tests.flows.test_unverified_window_page_refused import unverified_window_sns_refuses

SUBJECT = "Decommission skipped: webordinary-edit-service"


def answer_lost(monkeypatch, *, watch=None):
    """The unverified window's "Decommission skipped" page sent, and SNS's answer to it lost."""
    kwargs = {} if watch is None else {"watch": watch}
    return unverified_window_sns_refuses(monkeypatch, "Decommission skipped", **kwargs, error=lambda: AnswerLost(
        "SNS Publish", ReadTimeoutError(endpoint_url="https://sns.eu-west-1.amazonaws.com/")))


def test_a_rollout_runs_result_and_log_do_not_say_a_page_whose_answer_was_lost_was_not_sent(monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        _env, result = answer_lost(monkeypatch)
    assert result.outcome == "promoted", result
    assert "NOT sent" not in result.reason and "nobody was told" not in result.reason, result.reason
    assert f"whether its \"{SUBJECT}\" page was sent is not known" in result.reason, result.reason
    assert "delivery logs" in result.reason and "its answer lost (ReadTimeoutError" in result.reason, result.reason
    said = " ".join(r.getMessage() for r in caplog.records if SUBJECT in r.getMessage())
    assert said and "not sent" not in said and "nobody was told" not in said, said
    assert "is not known" in said and "delivery logs" in said, said


def test_the_entry_status_and_the_report_say_it_is_not_known_whether_the_page_went_out(monkeypatch, capsys):
    env, _ = answer_lost(monkeypatch)
    record = env.ledger.get(env.targets.canary_service)
    entry = record.last_transition(WINDOW_PAGE_REFUSED)
    assert entry is not None, record.history
    assert entry.comment.startswith(f"whether the \"{SUBJECT}\" page was sent is not known"), entry
    print_status(SimpleNamespace(name="svc-canary", targets=env.targets), record, record.weights, None, limit=1)
    out = " ".join(capsys.readouterr().out.split())
    assert f"whether the \"{SUBJECT}\" page was sent is not known" in out, out
    assert "was not sent" not in out and "reached nobody" not in out and "mend what SNS refused" not in out, out
    assert "delivery logs" in out, out
    report = " ".join(rollout_report(record).split())
    assert f"**Window page not confirmed:** whether the \"{SUBJECT}\" page was sent is not known" in report, report
    assert "was not sent" not in report, report


def test_the_monitor_flow_fails_saying_the_page_may_have_gone_out_not_to_mend_a_refusal(monkeypatch):
    watched = []
    with pytest.raises(WindowPageRefused) as failed:
        answer_lost(monkeypatch, watch=lambda _mp, env: watched.append(env) or run_monitor_flow())
    said = str(failed.value)
    assert "NOT sent" not in said and "mend what SNS refused" not in said, said
    assert f"whether its \"{SUBJECT}\" page was sent is not known" in said and "delivery logs" in said, said


def decommission_page_answer_lost(monkeypatch, watch):
    """A healthy promoted release whose window decommissions, watched by ``watch``, SNS's answer to
    the "Old version decommissioned" page lost: (the environment, what ``watch`` returned)."""
    from rollway.fakes import steady
    from rollway.spec import WeeklyPhase
    from tests.flows.test_monitor_rollout import SPEC, promoted_world

    spec = SPEC.model_copy(update={"phases": (WeeklyPhase(name="all", weights=(5, 100), decommission=True),)})
    env, _ = promoted_world(monkeypatch, spec=spec)
    env.metrics.behaviour = steady(5000, 0.001, 0.001)  # 2.0.0 is healthy: the window decommissions
    decommission_pages_answer_lost(env)
    return env, watch(monkeypatch, env)


def decommission_pages_answer_lost(env) -> None:
    """SNS's answers to ``env``'s "Old version decommissioned" pages lost; other notices go out."""
    notify = env.notifier.notify

    def lost(subject, message):
        if subject.startswith("Old version decommissioned"):
            raise AnswerLost("SNS Publish", ReadTimeoutError(endpoint_url="https://sns.eu-west-1.amazonaws.com/"))
        return notify(subject, message)

    env.notifier.notify = lost


def test_a_decommission_page_whose_answer_was_lost_is_not_said_not_sent(monkeypatch, caplog):
    """The "Old version decommissioned" page stays owed (the next run sends it, at least once), but its
    run's log line and result said it "was not sent" of a page SNS may have delivered."""
    with caplog.at_level(logging.INFO):
        env, result = decommission_page_answer_lost(monkeypatch, resume_the_window)
    assert env.deployer.services[env.targets.stable_service].desired == 0
    assert "page was not sent" not in result.reason, result.reason
    assert "whether the decommission's page was sent is not known" in result.reason, result.reason
    said = " ".join(r.getMessage() for r in caplog.records if "Old version decommissioned" in r.getMessage())
    assert said and "not sent" not in said and "is not known" in said and "delivery logs" in said, said


def test_the_monitor_flow_fails_saying_a_decommission_page_whose_answer_was_lost_may_have_gone_out(monkeypatch):
    with pytest.raises(DecommissionPageRefused) as failed:
        decommission_page_answer_lost(monkeypatch, lambda _mp, _env: run_monitor_flow(decommission=True))
    said = str(failed.value)
    assert "SNS refused" not in said and "not sent" not in said, said
    assert "\"Old version decommissioned: webordinary-edit-service\" page was sent is not known" in said, said
    assert "again, if it went out" in said and "delivery logs" in said, said


def test_a_decommission_page_whose_answer_was_lost_is_recorded_so_and_status_and_the_late_page_say_it(monkeypatch):
    """The ``decommission-page-refused`` entry held SNS's words alone: status said the page "was never
    sent (SNS refused it: ...)", and the late page "This page is late: SNS refused it", of a page SNS
    may have delivered."""
    from rollway.decommission_page import PAGE_REFUSED, late_message, page_owed, page_said

    env, _ = decommission_page_answer_lost(monkeypatch, resume_the_window)
    record = env.ledger.get(env.targets.canary_service)
    entry = record.history[-1]
    assert entry.kind == PAGE_REFUSED, record.history
    assert entry.comment.startswith(f"whether the \"Old version decommissioned: {env.targets.stable_service}\" page "
                                    "was sent is not known"), entry
    said, warning = page_said(record, env.targets.stable_service)
    assert warning and "never sent" not in said and "SNS refused" not in said, said
    assert "was sent is not known (SNS's answer to it was lost, and it may have gone out: " in said, said
    late = late_message(record, page_owed(record), env.targets.stable_service)
    assert late.startswith("This page is late, or a second one: SNS's answer to it was lost"), late


def test_a_decommission_page_whose_answer_was_lost_and_whose_record_the_ledger_refused_is_not_said_refused(
        monkeypatch, caplog):
    """SNS's answer to the "Old version decommissioned" page lost, then DynamoDB refused the entry
    saying so: the run's error line said "the ledger could not record that SNS refused the
    decommission's page", of a page SNS may have delivered, under the line saying it is not known."""
    from botocore.exceptions import ClientError

    import flows.monitor
    from rollway.decommission_page import PAGE_REFUSED

    record = flows.monitor._record

    def refused_then(env, rollout, kind, comment, **kwargs):
        if kind == PAGE_REFUSED:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "the table is unavailable"}},
                              "UpdateItem")
        return record(env, rollout, kind, comment, **kwargs)

    monkeypatch.setattr(flows.monitor, "_record", refused_then)
    with caplog.at_level(logging.INFO):
        decommission_page_answer_lost(monkeypatch, resume_the_window)
    unrecorded = [r.getMessage() for r in caplog.records if "the ledger could not record" in r.getMessage()]
    assert unrecorded and all("SNS refused" not in line for line in unrecorded), unrecorded
    assert any("what came of the \"Old version decommissioned" in line for line in unrecorded), unrecorded
