"""`rollway abort` that rejects a paused run and waits for it to roll back.

It said "resumed to roll back", then nothing for up to --wait-seconds (two minutes by default),
and when the run had not ended by then only "error: flow run ... is still Running after 120 s":
on-call could not tell whether the reject was sent, whether the traffic was back, or what next.
"""

from __future__ import annotations

from rollway.cli import ops
from tests.flows.test_answer_not_taken import paused_with_its_form
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by


def test_abort_says_it_waits_and_what_stands_when_the_rejected_run_is_still_rolling_back(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    # The run notices its answer within its 1-s poll: it is still Running this soon after the resume.
    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=0.05, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    assert outcome == ["reject by bob"], outcome  # the reject was sent and taken
    out, said = " ".join(out.split()), " ".join(err.split())
    assert f"rejected by bob: flow run {run.name} ({run.id}) resumed to roll back" in out, out
    # Before the wait, how long it may last: a silent terminal for two minutes read as a hang.
    assert f"waiting up to 0.05 s (--wait-seconds) for flow run {run.name} to finish rolling back" in out, out
    assert code == 1, (out, err)
    assert f"flow run {run.name} ({run.id}) is still Running after 0.05 s" in said, err
    assert "the reject was sent: the run goes on rolling back" in said, err
    assert "`rollway status` shows where it stands" in said, err
    assert "load balancer now 95/5 (stable/canary), read back" in out, out
