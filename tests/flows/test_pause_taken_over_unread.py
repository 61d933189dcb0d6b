"""A pause whose dead run's answers the run taking over could not read, or read and not record.

Such a pause is asked anew (one of those answers may be an approval): past its deadline it is no
"no answer". Two holes: answers read and then refused by the ledger were simply lost, and the
rollout rolled back as unanswered over them; and a read failing at every takeover (a worker
restarting every 50 minutes, the API refusing those reads) renewed the deadline each time, so the
pause never timed out.
"""

from __future__ import annotations

import uuid

import httpx
import pytest

import flows.progressive
from rollway.approvals import ApprovalAnswer, UnheardAnswer
from rollway.ledger import OWNER_PREFIX, UNHEARD, LedgerError, utc
from tests.flows.test_pause_taken_over import TIMEOUT, approving, spec
from tests.flows.test_progressive_fakes import Killed, env_with_ledger, kinds, progressive_on


def dies_after(env, waited: float, asked: list):
    def dies(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        asked.append((env.wall(), record.asked_until, summary))
        env.clock.sleep(waited)
        raise Killed("the worker running the rollout is restarted")

    return dies


def test_answers_read_from_the_dead_run_but_not_recorded_do_not_let_the_pause_roll_back_as_unanswered(
        monkeypatch, caplog):
    env = env_with_ledger()
    dead = f"{OWNER_PREFIX}{uuid.uuid4()}"
    asked: list = []
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=dead)
    env.clock.sleep(700)  # taken over 62 minutes into a pause that rolls back after 60
    (began, _, _), = asked
    dana = UnheardAnswer(answer=ApprovalAnswer(action="approve", approver="dana", comment="looks good"),
                         run=f"brave-otter ({dead.removeprefix(OWNER_PREFIX)})", answered_at=began + 3300,
                         silent_since=began + 3000, question="stage 5% passed; approval needed before 100%")
    monkeypatch.setattr(flows.progressive, "unheard_answers", lambda run_id: [dana])
    record = env.ledger.record

    def refuses_unheard(service, **kwargs):
        if kwargs["transition"].kind == UNHEARD:
            raise LedgerError("the ledger refused the write")
        return record(service, **kwargs)

    monkeypatch.setattr(env.ledger, "record", refuses_unheard)
    answered = []
    result = progressive_on(env, spec(), approving(env, answered, comment="dana approved already"), owner="run-2")
    assert result.outcome == "promoted", result
    assert "timeout" not in kinds(env), kinds(env)
    (at, until, summary), = answered
    assert until == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(until))  # asked anew, not rolled back
    said = " ".join(summary.split())
    assert "could not be recorded" in said and "asks again with a new deadline" in said, said


def test_a_read_failing_at_every_takeover_keeps_the_deadline_it_was_asked_anew_with(monkeypatch):
    env = env_with_ledger()
    first, second = (f"{OWNER_PREFIX}{uuid.uuid4()}" for _ in range(2))

    def unreachable(run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(flows.progressive, "unheard_answers", unreachable)
    asked: list = []
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=first)
    env.clock.sleep(700)
    # The run taking over cannot read the dead run's answers: asked anew, by a new deadline ...
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=second)
    (_, _, _), (at, renewed, _) = asked
    assert renewed == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(renewed))
    env.clock.sleep(300)  # ... and that run dies 55 minutes into it; read again, the answers fail again
    again = []
    assert progressive_on(env, spec(), approving(env, again), owner="run-3").outcome == "promoted"
    (_, until, summary), = again
    assert until == renewed, f"asked until {utc(until)}, not the deadline it was asked anew with, {utc(renewed)}"
    said = " ".join(summary.split())
    assert "its deadline unchanged" in said, said


def test_a_retry_of_the_crashed_run_that_cannot_read_its_answers_does_not_say_another_run_took_it_over(monkeypatch):
    """The Prefect UI's Retry of the crashed run asks its pause anew when the answers given to it
    while it was dead cannot be read: the form and the notice said "this run took the rollout over"."""
    env = env_with_ledger()
    dead = f"{OWNER_PREFIX}{uuid.uuid4()}"
    asked: list = []
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=dead)
    env.clock.sleep(700)

    def unreachable(run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(flows.progressive, "unheard_answers", unreachable)
    told = len(env.notifier.messages)
    again: list = []
    assert progressive_on(env, spec(), approving(env, again), owner=dead).outcome == "promoted"
    (at, until, summary), = again
    assert until == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(until))  # asked anew
    (_, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    for said in (" ".join(summary.split()), " ".join(message.split())):
        assert "could not be read" in said and "it was started again, and asks again with a new deadline" in said, said
        assert "took the rollout over" not in said, said
