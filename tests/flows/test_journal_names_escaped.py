"""A person's name as the journal's log lines and refusals quote it, shown escaped (``rollway.one_line``).

An approver's name is typed by a person (the form refuses a line break in it, not a right-to-left
override; a script's answer or an older rollway's kept name may hold either): a line break wrote a
line of its own in the run's log, under the real one, and a right-to-left override (U+202E)
reordered the words after it, so that the line read as nobody wrote it.
"""

from __future__ import annotations

import logging

import pytest
from prefect import flow

from flows.journal import LedgerJournal
from rollway.approvals import ApprovalAnswer
from rollway.decide import Pause
from rollway.ledger import RolloutMovedOn, RolloutRecord, Transition, new_rollout_id
from rollway.phases import RolloutPhase
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, full_spec

NAME = "dana\n\u202eenoN"
SHOWN = r"dana\n\u202eenoN"
PAUSE = Pause(reason="approve 25%?", cause="approval", stage_index=1)


def journal_of_a_rollout():
    env = env_with_ledger()
    spec = full_spec()
    a = env.ledger.create(RolloutRecord(
        service=env.targets.canary_service, rollout_id=new_rollout_id(env.clock.now()), image=IMAGE,
        spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING), owner="run-A", now=env.clock.now(),
        lease_seconds=600, wall=env.wall())
    return env, LedgerJournal(env, spec, owner="run-A", lease_seconds=600, actor="alice", rollout_id=a.rollout_id)


def assert_escaped(said: str) -> None:
    assert "\u202e" not in said and "enoN\n" not in said and "dana\n" not in said, said


def test_an_answer_to_a_rollout_that_moved_on_is_refused_naming_both_people_escaped():
    """Run A waits at its pause; run B takes its lapsed lease and erin approves there. dana's late
    answer to A's pause is not applied: the refusal names her, and erin, escaped."""
    env, journal = journal_of_a_rollout()
    service = env.targets.canary_service
    journal.tick(None, None)
    env.clock.sleep(700)
    env.ledger.acquire(service, owner="run-B", now=env.clock.now(), lease_seconds=600, wall=env.wall())
    env.ledger.record(service, owner="run-B", now=env.clock.now(),
                      transition=Transition(at=env.clock.now(), kind="approve", actor="erin\n\u202ex", to_stage=1))
    with pytest.raises(RolloutMovedOn) as moved:
        journal.answered(PAUSE, ApprovalAnswer(action="approve", approver=NAME), 1)
    said = str(moved.value)
    assert r"after approve by erin\n\u202ex, held by run-B" in said, said
    assert f"; {SHOWN}'s answer (approve) is not applied" in said, said
    assert_escaped(said)


@flow
def refused_past_the_bound(journal):
    journal.refused(PAUSE, ApprovalAnswer(action="approve", approver=NAME, next_weight=50), "no skip here")


def test_a_refused_answer_the_ledger_keeps_no_more_of_is_logged_with_its_name_escaped(monkeypatch, caplog):
    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 0)
    _env, journal = journal_of_a_rollout()
    with caplog.at_level(logging.WARNING):
        refused_past_the_bound(journal)
    said = [r.getMessage() for r in caplog.records if "refused answer (approve) is not recorded" in r.getMessage()]
    assert said and said[0].startswith(f"{SHOWN}'s refused answer (approve)"), said
    assert_escaped(said[0])


@flow
def not_applied_on_a_rollout_still_driven(journal):
    journal.not_applied(PAUSE, ApprovalAnswer(action="approve", approver=NAME), "read after the rollback")


def test_an_answer_not_applied_the_ledger_refuses_is_logged_with_its_name_escaped(caplog):
    """The not-applied entry is refused on a rollout that is not rolled back (``_rolled_back_rule``)."""
    _env, journal = journal_of_a_rollout()
    with caplog.at_level(logging.WARNING):
        not_applied_on_a_rollout_still_driven(journal)
    said = [r.getMessage() for r in caplog.records if "answer (approve) is not recorded" in r.getMessage()]
    assert said and said[0].startswith(f"{SHOWN}'s answer (approve) is not recorded in the ledger"), said
    assert_escaped(said[0])
