"""A pause whose run died while it waited, asked again by the run that takes the rollout over.

The run taking over asked the same question afresh: a new timeout from zero (an hour more, after
the dead run's pause had waited 50 minutes, or even after its deadline had passed under
`on_timeout: rollback`), and a second "Rollout waits for a person" notice with a new deadline that
did not say it was the same pause. A worker restarting every 50 minutes kept a rollout its policy
rolls back after an hour unanswered waiting for ever.
"""

from __future__ import annotations

import threading
import time

import pytest
from prefect import flow
from prefect.client.orchestration import get_client

from flows.approvals import prefect_approver
from rollway.approvals import ApprovalAnswer
from rollway.cli.ops import resume
from rollway.decide import Pause
from rollway.ledger import OWNER_PREFIX, RefusedAnswer, utc
from rollway.phases import RolloutPhase
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_approvals import paused_with_form
from tests.flows.test_progressive_fakes import IMAGE, Killed, env_with_ledger, kinds, progressive_on

TIMEOUT = 3600


def spec(on_timeout: str = "rollback") -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120),
                                            Stage(weight=100, bake_seconds=120, approval=True)],
                       approvals=Approvals(timeout_seconds=TIMEOUT, on_timeout=on_timeout), monitor_seconds=0)


def died_waiting(env, rollout: RolloutSpec, waited: float) -> float:
    """Run 1 pauses before 100 % and its process dies ``waited`` seconds into the pause; returns
    when that pause began (wall clock)."""
    began = []

    def dies(pause, summary):
        began.append(env.wall())
        env.clock.sleep(waited)
        raise Killed("the worker running the rollout is restarted")

    with pytest.raises(Killed):
        progressive_on(env, rollout, dies)
    return began[0]


def approving(env, asked: list, who: str = "bob", comment: str = "ok"):
    """An approver approving at once, noting in ``asked`` when (wall clock), until when the ledger
    says the pause is asked, and the form's text."""
    def answer(pause, summary):
        asked.append((env.wall(), env.ledger.get(env.targets.canary_service).asked_until, summary))
        return ApprovalAnswer(action="approve", approver=who, comment=comment)

    return answer


def test_the_run_taking_over_asks_the_same_pause_by_its_first_deadline_and_says_so():
    env = env_with_ledger()
    began = died_waiting(env, spec(), waited=3000)
    env.clock.sleep(200)  # the lease lapses, and a run takes the rollout over 53 minutes into the pause
    told = len(env.notifier.messages)
    asked = []

    def answers(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        asked.append((record.asked_until, record.open_pause.question, summary))
        return ApprovalAnswer(action="approve", approver="bob", comment="ok")

    assert progressive_on(env, spec(), answers, owner="run-2").outcome == "promoted"
    (until, question, summary), = asked
    due = began + TIMEOUT
    assert until == due, f"asked again until {utc(until)}, not the pause's own deadline {utc(due)}"
    assert f"unanswered by {utc(due)}" in question, question
    assert "stopped while it waited for this answer" in summary and "its deadline unchanged" in summary, summary
    # The notice sent again says it is the same pause, asked again by the run that took over.
    (subject, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    assert subject.startswith("Rollout waits for a person again"), subject
    assert "took the rollout over" in message and f"unanswered by {utc(due)}" in message, message


def test_a_pause_whose_deadline_passed_while_its_run_was_dead_times_out_at_once():
    env = env_with_ledger()
    died_waiting(env, spec(), waited=3000)
    env.clock.sleep(700)  # taken over 62 minutes into a pause that rolls back after 60

    def nobody(pause, summary):
        raise AssertionError(f"asked again for a whole new hour: {pause.reason}")

    result = progressive_on(env, spec(), nobody, owner="run-2")
    assert result.outcome == "rolled_back", result
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert "timeout" in kinds(env), kinds(env)
    assert f"no answer within {TIMEOUT} s" in result.reason, result.reason
    assert "took the rollout over" in result.reason, result.reason


def test_under_hold_a_pause_whose_deadline_passed_while_its_run_was_dead_is_asked_again_with_a_new_one():
    env = env_with_ledger()
    died_waiting(env, spec("hold"), waited=3000)
    env.clock.sleep(700)
    asked = []

    def answers(pause, summary):
        record = env.ledger.get(env.targets.canary_service)
        asked.append((env.wall(), record.asked_until))
        return ApprovalAnswer(action="approve", approver="bob", comment="ok")

    assert progressive_on(env, spec("hold"), answers, owner="run-2").outcome == "promoted"
    (at, until), = asked
    assert until == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(until))
    (subject, message), = [m for m in env.notifier.messages if m[0].startswith("Rollout waits for a person again")]
    assert "passed meanwhile" in message and "asks again with a new deadline" in message, message


@flow(name="approvals-pause-taken-over")
def asked_again_from(began: float):
    approver = prefect_approver(Approvals(timeout_seconds=600, on_timeout="rollback"), poll_interval=1)
    return approver(Pause(reason="stage 5% passed; approval needed before 100%", cause="approval", stage_index=1),
                    "**stage 5% passed; approval needed before 100%**", began=began)


def test_the_prefect_pause_asked_again_times_out_at_the_first_asking_s_deadline_and_its_form_says_so():
    began = time.time() - 500  # the dead run's pause began 500 s ago, of its 600
    answered = {}
    thread = threading.Thread(target=lambda: answered.update(answer=asked_again_from(began)), daemon=True)
    thread.start()
    run = paused_with_form("approvals-pause-taken-over")
    due = began + 600
    # The server times the pause out at the first asking's deadline, not 600 s from now.
    assert run.state.state_details.pause_timeout.timestamp() == pytest.approx(due, abs=30), \
        (run.state.state_details.pause_timeout, utc(due))
    assert f"unanswered by {utc(due)}" in run.state.message, run.state.message
    with get_client(sync_client=True) as client:
        form = client.read_flow_run_input(run.id, run.state.state_details.run_input_keyset["description"])
    assert f"Without an answer by **{utc(due)}**" in form, form
    resume(run.id, {"action": "approve", "approver": "dana"}, paused=run.state)
    thread.join(60)
    assert answered["answer"].action == "approve" and answered["answer"].approver == "dana", answered


def test_a_pause_a_person_answered_at_its_dead_run_is_asked_again_not_rolled_back_past_its_deadline():
    """`rollway promote` at the dead run (before its deadline) refuses the answer, records it, and
    tells the person that the run taking the rollout over asks again at the same pause, where the
    answer can be given: taken over past that deadline, the rollout was rolled back at once, its
    reason "no answer within 3600 s" over the approval the ledger holds."""
    env = env_with_ledger()
    began = died_waiting(env, spec(), waited=3000)
    env.clock.sleep(300)  # the run is found dead; 55 minutes into the pause dana approves it
    record = env.ledger.get(env.targets.canary_service)
    asked = record.open_pause
    env.ledger.refuse(record.service, rollout=record.rollout_id, answer=RefusedAnswer(
        at=env.clock.now(), actor="dana", action="approve", comment="looks good", to_stage=asked.stage,
        question=asked.question, run="run-1",
        reason="given with `rollway promote`, not taken: flow run run-1 is paused, but has stopped saying it waits"))
    env.clock.sleep(600)  # she starts progressive_rollout again, as told, 65 minutes into the pause
    told = len(env.notifier.messages)
    answered = []

    def dana(pause, summary):
        answered.append(env.ledger.get(env.targets.canary_service).asked_until)
        return ApprovalAnswer(action="approve", approver="dana", comment="looks good")

    result = progressive_on(env, spec(), dana, owner="run-2")
    assert result.outcome == "promoted", result
    assert "timeout" not in kinds(env), kinds(env)
    (until,) = answered
    assert until > began + TIMEOUT, utc(until)  # asked anew, by a new deadline: not the one past
    # And people are told it waits again, by that deadline: the pause is one entry, asked again by run-2.
    (subject, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    assert f"unanswered by {utc(until)}" in message, message


def test_a_pause_whose_refused_answers_the_ledger_may_have_dropped_says_so_when_taken_over(monkeypatch):
    """An answer `rollway promote` gave the dead run, refused and recorded, has the run taking over
    ask the pause anew; one the ledger dropped past the bound since (a script's refused answers
    after it) it cannot see. Acted on past the deadline, the timeout read "no answer within 3600 s"
    and the pause asked again read as nobody having tried, where the ledger says refused answers
    given to it may be gone: both say so."""
    from rollway.approvals import TakenOver, taken_over_said

    monkeypatch.setattr("rollway.ledger.REFUSED_KEPT", 1)
    env = env_with_ledger()
    died_waiting(env, spec(), waited=3000)
    env.clock.sleep(300)  # the run is found dead; 55 minutes into the pause dana approves it
    record = env.ledger.get(env.targets.canary_service)
    asked = record.open_pause
    env.ledger.refuse(record.service, rollout=record.rollout_id, answer=RefusedAnswer(
        at=env.clock.now(), actor="dana", action="approve", to_stage=asked.stage, question=asked.question,
        run="run-1", reason="given with `rollway promote`, not taken: flow run run-1 has stopped saying it waits"))
    # A script's answer with no pause to name, refused after hers: hers is dropped past the bound.
    env.ledger.refuse(record.service, rollout=record.rollout_id, answer=RefusedAnswer(
        at=env.clock.now(), actor="bot", action="approve", reason="nothing waits for an answer"))
    assert env.ledger.get(env.targets.canary_service).refused_dropped == 1
    env.clock.sleep(400)  # taken over 62 minutes into a pause that rolls back after 60

    def nobody(pause, summary):
        raise AssertionError(f"asked again for a whole new hour: {pause.reason}")

    result = progressive_on(env, spec(), nobody, owner="run-2")
    assert result.outcome == "rolled_back", result
    said = ("no answer within 3600 s, though a refused answer no longer kept may have been given to the pause (the "
            "ledger keeps only the newest refused answers); flow run ")
    assert result.reason.startswith(said), result.reason
    timeout = next(t for t in env.ledger.get(env.targets.canary_service).history if t.kind == "timeout")
    assert said in timeout.comment, timeout.comment
    # Asked again before its deadline, the notice and the form say it too.
    dropped = "a refused answer no longer kept may have been given to the pause"
    again = TakenOver(began=0.0, deadline=3600.0, run="run-1 (1)", dropped=dropped)
    assert taken_over_said(again).endswith(f"; {dropped} (the ledger keeps only the newest refused answers)"), \
        taken_over_said(again)


def test_a_pause_whose_dead_run_s_answers_could_not_be_read_is_asked_anew_not_rolled_back(monkeypatch, caplog):
    """The run taking over reads from the Prefect API the answers the dead run was given in the UI
    (recorded as ``unheard``, which closes the pause). When that read failed, it was only logged, and
    a pause past its deadline under `on_timeout: rollback` was rolled back at once "with no answer",
    though dana may have approved it there."""
    import uuid

    import httpx

    import flows.progressive

    dead = f"{OWNER_PREFIX}{uuid.uuid4()}"
    env = env_with_ledger()
    began = []

    def dies(pause, summary):
        began.append(env.wall())
        env.clock.sleep(3000)
        raise Killed("the worker running the rollout is restarted")

    with pytest.raises(Killed):
        progressive_on(env, spec(), dies, owner=dead)
    env.clock.sleep(700)  # taken over 62 minutes into a pause that rolls back after 60
    told = len(env.notifier.messages)

    def unreachable(run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(flows.progressive, "unheard_answers", unreachable)
    asked = []
    dana = approving(env, asked, "dana", "approved in the UI already")
    result = progressive_on(env, spec(), dana, owner="run-2")
    assert result.outcome == "promoted", result
    assert "timeout" not in kinds(env), kinds(env)
    (at, until, summary), = asked
    assert until == pytest.approx(at + TIMEOUT, abs=1), (utc(at), utc(until))  # a new deadline
    said = " ".join(summary.split())
    assert "answers given to it could not be read" in said and "asks again with a new deadline" in said, said
    (subject, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    assert subject.startswith("Rollout waits for a person again"), subject
    assert "answers given to it could not be read" in " ".join(message.split()), message
    logged = " ".join(caplog.text.split())
    assert "is asked anew with a new deadline" in logged, logged


def test_a_pause_taken_over_is_one_entry_whose_line_says_the_run_that_took_over_asks_it_again():
    """The run taking over recorded the dead run's pause a second time: `rollway status` and the
    report listed two pauses at 100 % where one waited, and the waiting line named the dead run's."""
    from rollway.reports import as_listed, rollout_report

    env = env_with_ledger()
    died_waiting(env, spec(), waited=3000)
    env.clock.sleep(200)
    seen = []

    def answers(pause, summary):
        seen.append(env.ledger.get(env.targets.canary_service))
        return ApprovalAnswer(action="approve", approver="bob", comment="ok")

    assert progressive_on(env, spec(), answers, owner="run-2").outcome == "promoted"
    (record,) = seen
    pauses = [t for t in record.history if t.kind == "pause"]
    assert len(pauses) == 1, [(t.kind, t.actor, t.comment) for t in record.history]
    listed = [t for t in as_listed(record) if t.kind == "pause"]
    assert len(listed) == 1, listed
    report = " ".join(rollout_report(record).split())
    assert "**waiting for a person's approval** for stage 2/2 (100%)" in report, report
    assert "asked again" in report and "by run-2, which took the rollout over from run-1" in report, report
    # Answered, the approval is recorded once, after that one pause.
    assert kinds(env).count("pause") == 1, kinds(env)


def test_a_retry_of_the_run_that_died_waiting_asks_its_pause_by_the_first_deadline_and_says_so():
    """The Prefect UI's Retry of the crashed run keeps its owner, so no ``takeover`` is written: the
    retried run asked the pause with a whole new timeout, and sent no notice of it."""
    env = env_with_ledger()
    began = died_waiting(env, spec(), waited=3000)
    env.clock.sleep(200)
    told = len(env.notifier.messages)
    asked = []
    assert progressive_on(env, spec(), approving(env, asked), owner="run-1").outcome == "promoted"
    (_, until, summary), = asked
    due = began + TIMEOUT
    assert until == due, f"asked again until {utc(until)}, not the pause's own deadline {utc(due)}"
    said = " ".join(summary.split())
    assert "was started again" in said and "its deadline unchanged" in said, said
    (subject, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    assert subject.startswith("Rollout waits for a person again"), subject
    assert f"unanswered by {utc(due)}" in message, message


def test_a_retry_of_the_run_that_died_waiting_past_its_deadline_acts_on_the_timeout():
    env = env_with_ledger()
    died_waiting(env, spec(), waited=3000)
    env.clock.sleep(700)  # retried 62 minutes into a pause that rolls back after 60

    def nobody(pause, summary):
        raise AssertionError(f"asked again for a whole new hour: {pause.reason}")

    result = progressive_on(env, spec(), nobody, owner="run-1")
    assert result.outcome == "rolled_back", result
    assert f"no answer within {TIMEOUT} s" in result.reason, result.reason
    # No other run took it over: the reason (the ledger's, the page's) said one did.
    said = " ".join(result.reason.split())
    assert "it was started again, and acts on it 1 min 40 s after it fell due" in said, said
    assert "took the rollout over" not in said, said


def test_another_run_taking_a_released_lease_over_a_pause_does_not_say_the_run_that_asked_was_started_again(
        monkeypatch):
    """The run that asked died waiting; the Prefect UI's Retry of it took its lease back (no ``takeover``:
    the same owner) and gave it back at once, refused (the Prefect API did not take the rollout's tag).
    A run started by hand then took the released lease, again with no ``takeover``: the form and the
    notice said the run that asked "was started again", though another run asked now."""
    import uuid

    import flows.progressive
    from flows.canary import RolloutRefused

    env = env_with_ledger()
    asker, other = (f"{OWNER_PREFIX}{uuid.uuid4()}" for _ in range(2))
    monkeypatch.setattr(flows.progressive, "unheard_answers", lambda run_id: [])

    def dies(pause, summary):
        env.clock.sleep(3000)
        raise Killed("the worker running the rollout is restarted")

    with pytest.raises(Killed):
        progressive_on(env, spec(), dies, owner=asker)
    env.clock.sleep(200)

    def refused(rollout):
        raise RuntimeError("the Prefect API refused the tag")

    with monkeypatch.context() as patched:
        patched.setattr(flows.progressive, "mark_rollout", refused)
        with pytest.raises(RolloutRefused):
            progressive_on(env, spec(), dies, owner=asker)  # the Retry, refused: the lease given back
    assert env.ledger.get(env.targets.canary_service).owner is None
    told = len(env.notifier.messages)
    asked: list = []
    assert progressive_on(env, spec(), approving(env, asked), owner=other).outcome == "promoted"
    (_, _, summary), = asked
    (_, message), = [m for m in env.notifier.messages[told:] if "waits for a person" in m[0]]
    for said in (" ".join(summary.split()), " ".join(message.split())):
        assert "started again" not in said, said
        assert "this run took the rollout over" in said and "its deadline unchanged" in said, said
