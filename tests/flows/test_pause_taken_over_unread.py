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


def dana_answered_unrecorded(env, monkeypatch) -> None:
    """A run dies 50 minutes into its pause, and dana approves it in the UI after; the run taking it
    over 62 minutes in (past the deadline of a pause that rolls back after 60) reads her answer, and
    the ledger refuses its record."""
    dead = f"{OWNER_PREFIX}{uuid.uuid4()}"
    asked: list = []
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=dead)
    env.clock.sleep(700)
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


def test_answers_read_from_the_dead_run_but_not_recorded_do_not_let_the_pause_roll_back_as_unanswered(
        monkeypatch, caplog):
    env = env_with_ledger()
    dana_answered_unrecorded(env, monkeypatch)
    answered = []
    result = progressive_on(env, spec(), approving(env, answered, comment="dana approved already"), owner="run-2")
    assert result.outcome == "promoted", result
    assert "timeout" not in kinds(env), kinds(env)
    (at, until, summary), = answered
    assert until == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(until))  # asked anew, not rolled back
    said = " ".join(summary.split())
    assert "could not be recorded" in said and "asks again with a new deadline" in said, said


def asked_anew_unread_and_died(env, monkeypatch) -> list:
    """Run 1 dies 50 minutes into its pause; run 2 takes it over 62 minutes in, cannot read run 1's
    answers (the Prefect API refuses), asks the pause anew and dies 50 minutes into it too. The
    reads keep failing. Returns what each asked (``dies_after``)."""
    first, second = (f"{OWNER_PREFIX}{uuid.uuid4()}" for _ in range(2))

    def unreachable(run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(flows.progressive, "unheard_answers", unreachable)
    asked: list = []
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=first)
    env.clock.sleep(700)
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies_after(env, 3000, asked), owner=second)
    return asked


def test_a_read_failing_at_every_takeover_keeps_the_deadline_it_was_asked_anew_with(monkeypatch):
    env = env_with_ledger()
    # The run taking over cannot read the dead run's answers: asked anew, by a new deadline ...
    (_, _, _), (at, renewed, _) = asked_anew_unread_and_died(env, monkeypatch)
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


def test_answers_read_but_not_recorded_are_said_by_who_gave_them_in_the_form_and_the_notice(monkeypatch):
    """The run taking over read dana's approval to the dead run, and only its ledger write failed:
    the form and the notice said the answers "could not be read ... or could not be recorded", as if
    nobody knew who had answered, and dana, told nothing of her own answer, had no cause to give it again."""
    env = env_with_ledger()
    dana_answered_unrecorded(env, monkeypatch)
    told = len(env.notifier.messages)
    answered: list = []
    assert progressive_on(env, spec(), approving(env, answered), owner="run-2").outcome == "promoted"
    (_, _, summary), = answered
    (_, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    for said in (" ".join(summary.split()), " ".join(message.split())):
        assert "dana answered approve" in said and "looks good" in said, said
        assert "could not be recorded in the ledger" in said and "asks again with a new deadline" in said, said
        assert "could not be read" not in said, said


def test_a_renewed_pause_whose_answers_could_not_be_read_again_is_not_rolled_back_as_unanswered(monkeypatch):
    """Asked anew once for answers it could not read, a pause keeps that deadline at the next takeover;
    that run's read failing too, the rollback past it said "no answer within 3600 s": an answer given to
    the run that died may have been an approval, and nothing read it."""
    env = env_with_ledger()
    asked_anew_unread_and_died(env, monkeypatch)
    env.clock.sleep(700)  # past the renewed deadline; the read fails again

    def nobody(pause, summary):
        raise AssertionError(f"asked again past its renewed deadline: {pause.reason}")

    result = progressive_on(env, spec(), nobody, owner="run-3")
    assert result.outcome == "rolled_back", result  # the policy acts, as ever
    reason = " ".join(result.reason.split())
    assert "no answer within" not in reason, reason
    assert "could not be read" in reason, reason
    timeout, = [t for t in env.ledger.get(env.targets.canary_service).history if t.kind == "timeout"]
    assert "no answer within" not in timeout.comment and "could not be read" in timeout.comment, timeout.comment


def test_a_renewed_pause_whose_answers_were_read_since_times_out_as_unanswered(monkeypatch):
    """The same pause, the second takeover's read answered (nothing given): its timeout is "no answer"."""
    env = env_with_ledger()
    asked_anew_unread_and_died(env, monkeypatch)
    env.clock.sleep(700)
    monkeypatch.setattr(flows.progressive, "unheard_answers", lambda run_id: [])

    def nobody(pause, summary):
        raise AssertionError(f"asked again past its renewed deadline: {pause.reason}")

    result = progressive_on(env, spec(), nobody, owner="run-3")
    assert result.outcome == "rolled_back", result
    assert f"no answer within {TIMEOUT} s" in result.reason, result.reason


@pytest.mark.parametrize("older", [False, True], ids=["this-version", "older-version"])
def test_answers_unread_as_an_older_version_recorded_them_are_not_said_to_be_unread_from_the_api(monkeypatch, older):
    """A version before the ledger kept which of the two failed wrote answers_unread alone, whether
    the answers could not be read or were read and refused by the ledger: the run taking over said
    they "could not be read from the Prefect API" of answers a person may have seen read."""
    env = env_with_ledger()
    asked_anew_unread_and_died(env, monkeypatch)
    rollouts = env.ledger._rollouts[env.targets.canary_service]
    pause = rollouts[-1].open_pause
    # Who gave what stays unset, as the version before wrote it and reads it ("could not be read from
    # the Prefect API"); written empty, that version said answers were read and not recorded, naming nobody.
    assert pause.answers_unread is not None and pause.answers_unrecorded is None and pause.answers_not_read
    if older:  # as that version left it: no word of which
        rollouts[-1] = rollouts[-1].model_copy(update={"open_pause": pause.model_copy(update={
            "answers_not_read": None})})
    env.clock.sleep(300)
    again = []
    assert progressive_on(env, spec(), approving(env, again), owner="run-3").outcome == "promoted"
    (_, _, summary), = again
    said = " ".join(summary.split())
    if older:
        # (The form's markdown escapes its parentheses.)
        assert ("could not be read from the Prefect API, or were read and could not be recorded in the ledger, at "
                in said and "recorded by an older version of rollway, which does not say which" in said), said
    else:
        assert "could not be read from the Prefect API at " in said and "older version" not in said, said
