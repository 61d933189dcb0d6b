"""Every line a person reads that names an approver shows the name escaped (``ApprovalAnswer.who``):
an answer an older rollway's form took can hold a line break and a right-to-left override, which
wrote a line of their own under the real one and reordered the words after them.

Read from Prefect, such a name is escaped already (``flows.approvals._earlier_form_took``): the
answers here are given to the lines as they stand, through a stand-in for that read."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import flows.approvals
import flows.progressive
from flows.env import OWNER_PREFIX
from rollway.approvals import UNHEARD_AFTER, ApprovalAnswer, auto_approve, scripted
from rollway.cli import ops
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, progressive_on
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by
from tests.flows.test_unheard_answer import PHASED, dead_run_answered, held_by_a_dead_run_answered, rollback_on

NAME = "dana\nmallory: approve \u202eevil"
ESCAPED = "dana\\nmallory: approve \\u202eevil"


def _read_as_typed(real):
    """``real``'s answers with their names as an older rollway's form stored them."""
    def read(run_id):
        return [u.model_copy(update={"answer": u.answer.model_copy(update={"approver": NAME})}) for u in real(run_id)]
    return read


def _lines(caplog, part):
    said = [r.getMessage() for r in caplog.records if part in r.getMessage()]
    assert said, caplog.text
    return said


def test_a_reject_naming_a_weight_warns_with_the_name_escaped(caplog):
    caplog.set_level(logging.INFO)
    env = env_with_ledger()
    result = progressive_on(env, full_spec(), scripted(ApprovalAnswer(action="reject", approver=NAME,
                                                                      next_weight=50)))
    assert result.outcome == "rolled_back", result.reason
    (line,) = _lines(caplog, "which a reject does not use")
    assert "\n" not in line and "\u202e" not in line and line.startswith(f"{ESCAPED}'s reject"), line


def test_a_run_taking_over_warns_of_the_unheard_answer_with_the_name_escaped(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    env = env_with_ledger()
    assert progressive_on(env, PHASED, auto_approve("alice"), phased=True).outcome == "holding"
    dead = dead_run_answered("reject", waited_until=time.time() - 600)
    env.ledger.acquire(env.targets.canary_service, owner=f"{OWNER_PREFIX}{dead.id}", now=env.clock.now(),
                       lease_seconds=1, wall=env.clock.now() - 3600)
    monkeypatch.setattr(flows.progressive, "unheard_answers", _read_as_typed(flows.progressive.unheard_answers))
    progressive_on(env, PHASED, auto_approve("alice"), owner="run-2")
    (line,) = _lines(caplog, "not acted on (recorded in the ledger)")
    assert "\n" not in line and "\u202e" not in line and line.startswith(f"{ESCAPED} answered reject"), line


def test_the_rollback_flow_warns_of_the_unheard_answer_with_the_name_escaped(monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    env, dead = held_by_a_dead_run_answered("reject")
    monkeypatch.setattr(flows.approvals, "unheard_answers", _read_as_typed(flows.approvals.unheard_answers))
    rollback_on(env, "dana's rejection never landed")
    (line,) = _lines(caplog, "nothing acted on it (recorded in the ledger)")
    assert "\n" not in line and "\u202e" not in line and line.startswith(f"{ESCAPED} answered reject"), line


def test_abort_says_the_unheard_answer_with_the_name_escaped(monkeypatch, capsys):
    import flows.rollback

    dead = dead_run_answered("reject", waited_until=time.time() - 600, ended=False)
    commands_see_a_rollout_owned_by(monkeypatch, dead)
    monkeypatch.setattr(flows.approvals, "unheard_answers", _read_as_typed(flows.approvals.unheard_answers))
    monkeypatch.setattr(flows.rollback, "rollback", lambda **kwargs: SimpleNamespace(
        done_by=None, steps=(), weights=None, canary_desired=0, flags_disabled=(), flags_kept=(), flags_held=()))
    assert ops.abort(approver="erin", reason="again", flow_run=None, wait_seconds=0.5, targets_block=None,
                     credentials_block=None) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "\u202e" not in out, out
    assert f"was answered reject by {ESCAPED} at " in " ".join(out.split()), out
    assert f"{UNHEARD_AFTER}: nothing acted on it; recorded in the ledger" in " ".join(out.split()), out
