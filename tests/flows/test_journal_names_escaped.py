"""A person's name as the journal's log lines and refusals quote it, shown escaped (``rollway.one_line``).

An approver's name is typed by a person (the form refuses a line break and a right-to-left override
in it; an older rollway's form took either, and its kept names may hold them): a line break wrote a
line of its own in the run's log, under the real one, and a right-to-left override (U+202E)
reordered the words after it, so that the line read as nobody wrote it.
"""

from __future__ import annotations

import logging

import pytest
from prefect import flow

from rollway.approvals import ApprovalAnswer
from rollway.decide import Pause
from rollway.ledger import RolloutMovedOn, Transition
from tests.flows.test_lease_of_the_next_rollout import rollout_a_and_its_journal

NAME = "dana\n\u202eenoN"
SHOWN = r"dana\n\u202eenoN"
PAUSE = Pause(reason="approve 25%?", cause="approval", stage_index=1)


def assert_escaped(said: str) -> None:
    assert "\u202e" not in said and "enoN\n" not in said and "dana\n" not in said, said


def test_an_answer_to_a_rollout_that_moved_on_is_refused_naming_both_people_escaped():
    """Run A waits at its pause; run B takes its lapsed lease and erin approves there. dana's late
    answer to A's pause is not applied: the refusal names her, and erin, escaped."""
    env, _a, journal = rollout_a_and_its_journal()
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
    # Refused by the ledger: it keeps no refused answer (the test sets REFUSED_KEPT to 0).
    journal.refused(PAUSE, ApprovalAnswer(action="approve", approver=NAME, next_weight=50), "no skip here")


@flow
def not_applied_on_a_rollout_still_driven(journal):
    # Refused by the ledger: the rollout is not rolled back (``_rolled_back_rule``).
    journal.not_applied(PAUSE, ApprovalAnswer(action="approve", approver=NAME), "read after the rollback")


@pytest.mark.parametrize(("answered", "said"), [
    (refused_past_the_bound, "'s refused answer (approve) is not recorded in the ledger"),
    (not_applied_on_a_rollout_still_driven, "'s answer (approve) is not recorded in the ledger"),
], ids=["refused, past the bound", "not applied, on a rollout still driven"])
def test_an_answer_the_ledger_does_not_record_is_logged_with_its_name_escaped(monkeypatch, caplog, answered, said):
    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 0)
    _env, _a, journal = rollout_a_and_its_journal()
    with caplog.at_level(logging.WARNING):
        answered(journal)
    lines = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert lines and lines[0].startswith(f"{SHOWN}{said}"), lines
    assert_escaped(lines[0])
