"""A person's comment (and name) as the run's log, its state and the notices show it.

An answer's comment is typed by a person, or sent through the API by a script: an escape sequence
in it cleared or recoloured the terminal of whoever read the run's log, and a right-to-left override
(U+202E) reordered the words after it, so that the line read as nobody wrote it. Shown escaped
(``rollway.one_line``), as the reports and `rollway status` show it.
"""

from __future__ import annotations

import logging

from prefect.client.orchestration import get_client

import flows.progressive
from rollway.approvals import ApprovalAnswer, UnheardAnswer, unheard_said
from tests.flows.test_pause_outage import a_canary_failing_behind_an_outage, rolled_back_through_it

COMMENT = "fine\x1b[2J\u202eevorppa"
SHOWN = "fine\\x1b[2J\\u202eevorppa"


def test_an_answer_the_canary_ended_is_logged_with_its_comment_escaped(monkeypatch, caplog):
    from prefect.context import FlowRunContext

    answered: list = []

    def dana_answers() -> None:
        if not answered:
            answered.append(FlowRunContext.get().flow_run.id)
            with get_client(sync_client=True) as client:
                # The form refuses a name with a bidi control (test_bidi_names_refused): the comment carries it.
                client.resume_flow_run(answered[0], run_input={"action": "approve", "approver": "dana",
                                                               "comment": COMMENT})

    env, _outage, asked = a_canary_failing_behind_an_outage(monkeypatch, reads=5, skipping=dana_answers)
    with caplog.at_level(logging.INFO):
        rolled_back_through_it(env, asked, 60, caplog)
    said = [r.getMessage() for r in caplog.records if "the approval pause ends as it was answered" in r.getMessage()]
    assert said and all(f"approve by dana ({SHOWN})" in m for m in said), said
    assert not any("\x1b" in m or "\u202e" in m for m in said), said


def test_unheard_answers_are_said_with_their_words_escaped():
    dana = UnheardAnswer(answer=ApprovalAnswer(action="approve", approver="dana\u202e", comment=f"looks\n {COMMENT}"),
                         run="brave-otter (1)", answered_at=0.0, silent_since=0.0)
    assert unheard_said([dana]) == f"dana\\u202e answered approve (looks {SHOWN})"


def test_an_answer_taken_at_the_pauses_timeout_is_said_escaped_on_the_runs_state(monkeypatch):
    """The answer landed at the deadline, after the run's last poll: the run's Running state says it
    acts on it, in the UI and to `rollway promote`, the comment escaped there too."""
    from prefect import flow

    import flows.approvals
    from flows.approvals import prefect_approver
    from rollway.decide import Pause
    from rollway.spec import Approvals
    from tests.flows.test_pause_outage import expired_in_an_outage

    answered_as_it_expired = expired_in_an_outage(
        '{"action": "approve", "approver": "dana", "comment": "fine\\u001b[2J\\u202eevorppa"}')

    @flow(name="approval-answered-as-it-expired")
    def pauses_once() -> str:
        approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=0.05)
        return approver(Pause(reason="approval needed before 25%", cause="approval", stage_index=1), "summary").action

    monkeypatch.setattr(flows.approvals, "propose_state", answered_as_it_expired)
    state = pauses_once(return_state=True)
    assert state.result() == "approve"
    with get_client(sync_client=True) as client:
        said = [s.message for s in client.read_flow_run_states(state.state_details.flow_run_id)
                if s.is_running() and s.message and "it acts on that answer" in s.message]
    assert said == [f"answered at its approval pause's timeout (approve by dana ({SHOWN})): it acts on that answer"], said


def test_answers_read_but_not_recorded_are_said_escaped_in_the_form_and_the_notice(monkeypatch):
    """dana's approval to a dead run, read by the run taking the rollout over and refused by the
    ledger, is said in the form and the notice of the pause asked again: her comment escaped."""
    from tests.flows.test_pause_taken_over import approving, spec
    from tests.flows.test_pause_taken_over_unread import dana_answered_unrecorded
    from tests.flows.test_progressive_fakes import env_with_ledger, progressive_on

    env = env_with_ledger()
    dana_answered_unrecorded(env, monkeypatch)
    (dana,) = flows.progressive.unheard_answers(None)
    typed = dana.model_copy(update={"answer": dana.answer.model_copy(update={"comment": COMMENT})})
    monkeypatch.setattr(flows.progressive, "unheard_answers", lambda run_id: [typed])
    told = len(env.notifier.messages)
    answered: list = []
    assert progressive_on(env, spec(), approving(env, answered), owner="run-2").outcome == "promoted"
    (_, _, summary), = answered
    (_, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    assert f"dana answered approve ({SHOWN})" in message, message
    # The form's markdown escapes the backslashes in turn, so that they are shown.
    assert r"dana answered approve \(fine\\x1b\[2J\\u202eevorppa\)" in summary, summary
    for said in (summary, message):
        assert "\x1b" not in said and "\u202e" not in said, said


def test_a_rejection_is_given_as_the_rollbacks_reason_with_its_words_escaped(caplog):
    """dana rejects the 25 % stage: the rollback's reason ("rejected by dana: ..."), which the page,
    the notice and the ledger show, and the run's log lines quote her name and comment escaped."""
    from rollway.approvals import scripted
    from tests.flows.test_canary_fakes import canary_on, spec
    from tests.flows.fake_env import fake_environment

    env = fake_environment(canary_error_rate=0.0)
    person = scripted(ApprovalAnswer(action="reject", approver="dana\u202e", comment=COMMENT))
    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), person)
    assert result.outcome == "rolled_back", result.reason
    assert result.reason == f"rejected by dana\\u202e: {SHOWN}", result.reason
    said = [r.getMessage() for r in caplog.records if "dana" in r.getMessage()]
    assert said and not any("\x1b" in m or "\u202e" in m for m in said), said


def test_an_accepted_stage_row_names_its_acceptor_escaped():
    from rollway.approvals import scripted
    from tests.flows.fake_env import fake_environment
    from tests.flows.test_canary_fakes import canary_on, spec

    env = fake_environment(rps=0.01)
    dana = ApprovalAnswer(action="approve", approver="dana\u202e", comment=COMMENT)
    result = canary_on(env, spec(5, 100), scripted(dana, dana))
    assert "accepted by dana\\u202e" in [s.decision for s in result.stages], result.stages


def test_unrecorded_answers_kept_raw_by_an_older_version_are_said_escaped_in_the_form():
    """An older version kept who gave what in the ledger as it was typed: the form and the notice
    of the pause asked again said it raw."""
    from rollway.approvals import TakenOver, taken_over_said

    taken = TakenOver(began=None, deadline=0.0, run="brave-otter", unread=0.0,
                      unrecorded=f"dana\u202e answered approve ({COMMENT})")
    said = taken_over_said(taken)
    assert f"dana\\u202e answered approve ({SHOWN}) to it after it stopped" in said, said
    assert "\x1b" not in said and "\u202e" not in said, said
