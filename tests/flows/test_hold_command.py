"""`rollway hold`: the Resume form's third answer, from a terminal.

The form offers approve, reject and hold; the command line had only promote and abort, so a
person at a terminal who wanted the stage watched longer could only approve or roll back.
"""

from __future__ import annotations

from rollway.cli import ops
from tests.flows.test_answer_not_taken import paused_with_its_form
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by


def test_hold_answers_the_paused_run_hold_with_who_and_why(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    code = ops.hold(approver=" carol ", comment="watch one more hour", flow_run=None, targets_block=None,
                    credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(30)
    assert code == 0, err
    assert outcome == ["hold by carol"]
    said = " ".join(out.split())
    assert f"held by carol: flow run {run.name} ({run.id}) stays at its weights and asks again" in said, out


def test_hold_with_a_comment_the_form_would_refuse_reads_nothing(monkeypatch, capsys):
    monkeypatch.setattr(ops, "connect", lambda *a: (_ for _ in ()).throw(AssertionError("read")))
    code = ops.hold(approver="carol", comment="x" * 1001, flow_run=None, targets_block=None, credentials_block=None)
    _out, err = capsys.readouterr()
    assert code == 2 and "--comment" in err and "nothing was done" in err, err
