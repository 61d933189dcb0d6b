"""What a pause's form shows, and what a person's answer can do to the next form and to the rollout:
the form names the release it asks about and says by when to answer, an approver's name is shown as typed, and a skip ahead
where none applies is refused, not dropped."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from prefect import flow

from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer
from rollway.fakes import FakeLedger
from rollway.ledger import rejection_reason
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


def recording(*answers):
    """An approver answering from a script, keeping each pause and the form's description."""
    seen, queue = [], list(answers)

    def answer(pause, summary):
        seen.append((pause, summary))
        return queue.pop(0)

    return answer, seen


@flow
def paused_once(on_timeout: str = "hold"):
    """One approval pause of ten minutes; returns the answer it took."""
    import flows.approvals
    from rollway.decide import Pause
    from rollway.spec import Approvals

    approver = flows.approvals.prefect_approver(Approvals(timeout_seconds=600, on_timeout=on_timeout), poll_interval=1)
    return approver(Pause(reason="approval needed before 100%", cause="approval", stage_index=1), "summary")


@flow
def run(env, spec, approver):
    return run_progressive(env, spec, approver, owner="run-1", actor="alice", phased=False)


def answered_at_the_deadline(answer: dict, runs: list | None = None):
    """A ``_wait_for_resume`` whose last poll saw Paused and the deadline gone, the person's
    ``answer`` landing right after it; the run's id is added to ``runs``."""
    import time

    from prefect.flow_runs import resume_flow_run

    def last_poll_then_the_answer_lands(client, run_id, paused, deadline, poll_interval, watch=None):
        for _ in range(50):
            try:
                resume_flow_run(run_id, run_input=answer)
                break
            except RuntimeError:  # not paused yet
                time.sleep(0.2)
        assert client.read_flow_run(run_id).state.is_running()
        if runs is not None:
            runs.append(run_id)
        return False  # as the wait ends on a pause past its deadline

    return last_poll_then_the_answer_lands


def test_an_approvers_name_cannot_write_markdown_into_the_next_form():
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    evil = "mallory\n\n## All checks passed - choose approve\n\n[runbook](https://evil.example)"
    approver, seen = recording(
        ApprovalAnswer(action="approve", approver=evil, next_weight=7),  # refused: 7 % is no stage
        ApprovalAnswer(action="reject", approver="dana"),
    )
    run(env, spec, approver)
    second = seen[1][1]
    assert "\n## All checks passed" not in second and "](https://" not in second, second
    assert "mallory \\#\\# All checks passed" in second  # shown, as typed, on the note's line


def test_a_skip_ahead_at_an_inconclusive_pause_is_refused_and_asked_again():
    """Approve with next_weight=50 at an inconclusive pause used to accept the stage and shift
    to the next one (25 %), dropping the person's choice without a word."""
    env = fake_environment(rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=120) for w in (5, 25, 50, 100)],
                       monitor_seconds=0)
    shifts = []
    real = env.router.set_weights

    def set_weights(weights):
        shifts.append(weights.canary)
        return real(weights)

    env.router.set_weights = set_weights
    approver, seen = recording(ApprovalAnswer(action="approve", approver="dana", next_weight=50),
                               ApprovalAnswer(action="reject", approver="dana"))
    run(env, spec, approver)
    assert [pause.cause for pause, _ in seen] == ["inconclusive", "inconclusive"]
    assert "Leave **next_weight** empty: approving here accepts this stage" in seen[0][1], seen[0][1]
    assert "applies only at an approval pause; this is an inconclusive pause" in seen[1][1], seen[1][1]
    assert shifts == [5, 0], f"shifts {shifts}: nothing but the first stage and the rollback"


def test_a_refused_answer_at_an_approval_pause_is_asked_again_at_once():
    """A weight that is no later stage was refused and the form came back an analysis interval
    later (an hour, at interval_seconds 3600): the person who mistyped had gone by then. The pause
    itself keeps judging the canary while it waits, so nothing is waited for before asking again."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=3600),
                                            Stage(weight=100, bake_seconds=3600, approval=True)],
                       analysis={"interval_seconds": 3600}, monitor_seconds=0)
    asked_at = []
    approver, seen = recording(ApprovalAnswer(action="approve", approver="dana", next_weight=7),
                               ApprovalAnswer(action="reject", approver="dana"))

    def timed(pause, summary):
        asked_at.append(env.clock.now())
        return approver(pause, summary)

    run(env, spec, timed)
    assert len(seen) == 2 and "dana's approval was not applied" in seen[1][1], seen
    assert asked_at[1] == asked_at[0], f"asked again {asked_at[1] - asked_at[0]:g} s later"


def test_an_approval_form_lists_the_weights_next_weight_may_name():
    """The form's next_weight takes any weight from 1 to 100; a weight that is no later stage was
    refused only at the next pause, an analysis interval after the person answered."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120, approval=True)]
                       + [Stage(weight=w, bake_seconds=120) for w in (25, 50, 100)], monitor_seconds=0)
    approver, seen = recording(ApprovalAnswer(action="reject", approver="dana"))
    run(env, spec, approver)
    assert "Approving shifts to 5%; to skip ahead instead, set **next_weight** to one of 25, 50, 100." in seen[0][1]


def test_an_answer_the_server_took_after_the_last_poll_wins_over_the_timeout(monkeypatch):
    """The run's deadline falls just before the server's. A resume landing between the last
    poll and the run's own return to Running was accepted by the server (the person was told
    so), and the timeout policy replaced it: a reject became a hold."""
    import flows.approvals

    monkeypatch.setattr(flows.approvals, "_wait_for_resume",
                        answered_at_the_deadline({"action": "reject", "approver": "erin", "comment": "roll back"}))

    answer = paused_once()
    assert (answer.action, answer.approver, answer.timed_out) == ("reject", "erin", False), answer


def test_an_answer_the_server_took_just_before_the_run_left_its_pause_wins_over_the_timeout(monkeypatch):
    """The run read Paused past its deadline and proposed Running; a resume the server accepted
    in between (Running to Running is accepted too) was dropped: the run applied its timeout
    policy although the person had been told their reject was taken. And its Running state said
    "left its approval pause at its timeout, unanswered", in the UI and to `rollway promote`, while
    it acted on the reject."""
    import time

    from prefect import get_client
    from prefect.flow_runs import resume_flow_run

    import flows.approvals

    real_propose = flows.approvals.propose_state
    landed = []

    def the_answer_lands_first(client, state, run_id, leaving=None):
        if state.is_running() and not landed:
            resume_flow_run(run_id, run_input={"action": "reject", "approver": "erin", "comment": "roll back"})
            landed.append(run_id)
        return real_propose(client, state, run_id, leaving)

    def deadline_passed_while_paused(client, run_id, paused, deadline, poll_interval, watch=None):
        for _ in range(50):  # the run's pause is stored before the wait begins
            if client.read_flow_run(run_id).state.is_paused():
                return False
            time.sleep(0.2)
        raise AssertionError("the run never paused")

    monkeypatch.setattr(flows.approvals, "propose_state", the_answer_lands_first)
    monkeypatch.setattr(flows.approvals, "_wait_for_resume", deadline_passed_while_paused)

    answer = paused_once()
    assert landed, "the race was not staged"
    assert (answer.action, answer.approver, answer.timed_out) == ("reject", "erin", False), answer
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(landed[0])
    # What the run was in while it acted on the answer: its last Running.
    (*_, acting) = [state for state in states if state.is_running()]
    assert "unanswered" not in (acting.message or "") and "reject by erin" in (acting.message or ""), acting.message


@pytest.mark.parametrize("meanwhile", ["cancelled", "marked failed", "cancelled as the server fails to take it"])
def test_an_answer_found_at_the_timeout_is_not_acted_on_over_what_a_person_set_meanwhile(monkeypatch, meanwhile):
    """An answer that landed at the deadline is found once the run has left its timed-out pause,
    and a person cancels the run (or marks it Failed) before the run's Running says it acts on that
    answer. The server refused that Running for the Cancelling run, and the run acted on the answer
    all the same; it took it over Failed, the person's state overwritten; and its abort, the server
    busy as the cancel was written, sent Prefect's Abort out of the run, which ended with no hook
    run. It now stops as a run cancelled at its pause does, and leaves any other state as it is."""
    from prefect import get_client
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAbortDetails
    from prefect.states import Cancelling, Failed

    import flows.approvals
    from flows.approvals import CancelledWhilePaused, PauseInterrupted

    original_set, real_stored, runs = SyncPrefectClient.set_flow_run_state, flows.approvals._stored_answer, []
    person = (Failed(message="marked failed from the UI") if meanwhile == "marked failed"
              else Cancelling(message="cancelled from the UI"))

    def found_then_a_person_acts(client, form, paused, run_id):
        given = real_stored(client, form, paused, run_id)
        original_set(client, run_id, person, force=True)
        return given

    def acts_as_the_server_fails(self, flow_run_id, state, force=False):
        if state.is_running() and (state.message or "").startswith("answered at"):
            original_set(self, flow_run_id, person)
            return OrchestrationResult(state=None, status=SetStateStatus.ABORT, details=StateAbortDetails(
                reason="Error validating state: OperationalError('database is locked')"))
        return original_set(self, flow_run_id, state, force=force)

    monkeypatch.setattr(flows.approvals, "_wait_for_resume",
                        answered_at_the_deadline({"action": "approve", "approver": "erin", "comment": "go"}, runs))
    if meanwhile == "cancelled as the server fails to take it":
        monkeypatch.setattr(SyncPrefectClient, "set_flow_run_state", acts_as_the_server_fails)
    else:
        monkeypatch.setattr(flows.approvals, "_stored_answer", found_then_a_person_acts)

    stopped = PauseInterrupted if meanwhile == "marked failed" else CancelledWhilePaused
    with pytest.raises(stopped) as ended:
        paused_once()
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(runs[0])
    if meanwhile == "marked failed":
        assert str(ended.value) == ("the run was moved to Failed (marked failed from the UI) as it took the answer "
                                    "given at its approval pause's timeout, before acting on it; stopping"), ended.value
    else:
        assert str(ended.value) == ("the run was cancelled as it took the answer given at its approval pause's "
                                    "timeout, before acting on it (cancelled from the UI)"), ended.value
    # Never Running again after the person's state: nothing acted on the answer over it.
    set_at = max(i for i, state in enumerate(states) if state.message == person.message)
    assert not any(state.is_running() for state in states[set_at:]), [(s.name, s.message) for s in states]


def test_an_answer_found_at_the_timeout_is_acted_on_though_the_server_never_takes_the_running_saying_so(
        monkeypatch, caplog):
    """The Running that says the run acts on an answer found at the timeout is one the server fails
    to take every time, the run still Running: Prefect's Abort went out of the run, left Running
    with nothing to run it, and the answer the person was told was taken was never acted on."""
    import logging

    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.responses import OrchestrationResult, SetStateStatus, StateAbortDetails

    import flows.approvals

    monkeypatch.setattr(flows.approvals, "ABORTED_FIRST_WAIT_SECONDS", 0.01)
    original_set = SyncPrefectClient.set_flow_run_state

    def never_takes_it(self, flow_run_id, state, force=False):
        if state.is_running() and (state.message or "").startswith("answered at"):
            return OrchestrationResult(state=None, status=SetStateStatus.ABORT, details=StateAbortDetails(
                reason="Error validating state: OperationalError('database is locked')"))
        return original_set(self, flow_run_id, state, force=force)

    monkeypatch.setattr(flows.approvals, "_wait_for_resume",
                        answered_at_the_deadline({"action": "reject", "approver": "erin", "comment": "roll back"}))
    monkeypatch.setattr(SyncPrefectClient, "set_flow_run_state", never_takes_it)
    with caplog.at_level(logging.WARNING):
        answer = paused_once()
    assert (answer.action, answer.approver, answer.timed_out) == ("reject", "erin", False), answer
    said = [r.getMessage() for r in caplog.records if "could not say it acts on the answer" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith("it acts on it all the same, its state not saying so"), said


def test_the_form_names_the_image_the_service_and_the_live_weights():
    """A pause before the first stage showed only "approval needed before 5%" and a table with
    no row: nothing in the form said which release of which service was asked about."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120)], monitor_seconds=0)
    approver, seen = recording(ApprovalAnswer(action="reject", approver="dana"))
    run(env, spec, approver)
    (pause, summary), = seen
    assert pause.stage_index == 0
    shown = re.sub(r"\\(.)", r"\1", summary)  # as it reads in the UI: markdown's escapes gone
    assert f"{IMAGE} on webordinary-edit-service-canary: traffic now 100/0 (stable/canary)" in shown, summary


def pause_left_unanswered(monkeypatch, on_timeout: str):
    """``paused_once`` with nobody answering: the form's description and the Paused state."""
    import flows.approvals

    seen = []

    def read_the_form_then_time_out(client, run_id, paused, deadline, poll_interval, watch=None):
        keyset = paused.state_details.run_input_keyset
        seen.append((client.read_flow_run_input(run_id, keyset["description"]), client.read_flow_run(run_id).state))
        return False

    monkeypatch.setattr(flows.approvals, "_wait_for_resume", read_the_form_then_time_out)
    answer = paused_once(on_timeout)
    assert answer.timed_out
    (form, state), = seen
    return form, state


@pytest.mark.parametrize("on_timeout, then", [("rollback", "the rollout **rolls back**"),
                                               ("hold", "the rollout stays at these weights")])
def test_the_form_says_by_when_to_answer_and_what_a_timeout_does(monkeypatch, on_timeout, then):
    """The Prefect UI shows a pause's timeout nowhere: the form said only "approve to continue,
    reject to roll back now, hold to stay here", and a person could not tell that leaving it
    open rolls the rollout back an hour later."""
    form, state = pause_left_unanswered(monkeypatch, on_timeout)
    shown = re.search(r"Without an answer by \*\*(.+) UTC\*\* \(10 min after this pause began\), (.+)", form)
    assert shown is not None and shown.group(2).startswith(then), form
    due = datetime.strptime(shown.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs((due - state.state_details.pause_timeout).total_seconds()) < 2, (due, state.state_details)


def test_the_paused_state_says_what_the_pause_asks_for_the_command_line(monkeypatch):
    """`rollway status` and `promote` read the run's state, not its form: the Paused state had no
    message, so at a terminal nothing said what an approval would approve."""
    _, state = pause_left_unanswered(monkeypatch, "rollback")
    assert state.is_paused()
    assert re.fullmatch(r"approval pause: approval needed before 100%; unanswered by \S+ \S+ UTC \(wall clock\) "
                        r"the rollout rolls back", state.message), state.message


def test_an_answers_comment_is_recorded_as_given_even_ending_in_a_colon():
    """The ledger's line was cut with strip(": "): "per INC-42:" was recorded as "per INC-42", and a
    resumed run's rollback for a rejection gave its reason without the colon the person typed."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120, approval=True),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    approver, _ = recording(ApprovalAnswer(action="approve", approver="dana", comment="per INC-42: "),
                            ApprovalAnswer(action="reject", approver="erin", comment="wait for:"))
    run(env, spec, approver)
    answers = [t for t in env.ledger.get(env.targets.canary_service).history if t.kind in ("approve", "reject")]
    assert [t.comment for t in answers] == ["approve: per INC-42:", "reject: wait for:"]
    assert rejection_reason(answers[-1]) == "rejected by erin: wait for:"


def test_a_form_asked_again_after_a_hold_says_who_held_and_why():
    """A hold asked the same question again with nothing of the hold on the form: the next person
    to open it could not tell a colleague had held the stage, nor why, and could approve over it."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    approver, seen = recording(
        ApprovalAnswer(action="hold", approver="dana", comment="the DB *migration* runs until 14:00"),
        ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 3600 s"),
        ApprovalAnswer(action="reject", approver="erin"),
    )
    run(env, spec, approver)
    first, second, third = (summary for _, summary in seen)
    assert "answered **hold**" not in first
    assert re.search(r"> dana answered \*\*hold\*\* at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: "
                     r"the DB \\\*migration\\\* runs until 14:00\.", second), second
    assert "> Nobody answered the last pause (no answer within 3600 s): it timed out at" in third, third
    assert "dana answered" not in third, third


def test_a_rejection_with_a_blank_comment_pages_the_pauses_reason():
    """The form's comment takes spaces or a bare line break: the rollback's reason and the page
    on-call got read "rejected by dana:" and nothing else."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    approver, _ = recording(ApprovalAnswer(action="reject", approver="dana", comment="  \n "))
    result = run(env, spec, approver)
    assert result.reason.startswith("rejected by dana: 5%: canary errors 0/"), result.reason
    assert result.reason.endswith("; approval needed before 100%"), result.reason
    pages = [message for subject, message in env.notifier.messages if subject.startswith("Rollback:")]
    assert pages and all(result.reason in m for m in pages), (pages, env.notifier.messages)


def test_a_pause_nobody_answered_pages_that_nobody_did_not_that_the_canary_was_bad():
    """The rollback of a pause that timed out was paged as "rejected by timeout: no answer
    within 3600 s", above the advice to look at the canary's metrics: on-call read a canary
    found bad, while the judge had passed it and nobody had answered."""
    env = fake_environment()
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)], monitor_seconds=0)
    approver, _ = recording(ApprovalAnswer(action="reject", approver="timeout", timed_out=True,
                                           comment="no answer within 3600 s"))
    result = run(env, spec, approver)
    pages = [message for subject, message in env.notifier.messages if subject.startswith("Rollback:")]
    assert pages, env.notifier.messages
    why = next(line for line in pages[0].splitlines() if line.startswith("Why: "))
    assert why.startswith("Why: no answer within 3600 s to the pause \"5%: canary errors 0/"), why
    assert why.endswith("approval needed before 100%\": approvals.on_timeout is rollback; "
                        "the judge had not failed the canary"), why
    assert result.outcome == "rolled_back" and "rejected by" not in result.reason
