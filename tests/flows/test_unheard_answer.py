"""An answer given in the Prefect UI to a paused run whose process had died.

Prefect stores the answer with the resume and makes the run Running, with nothing to run it: no
process read the answer, nothing acted on it, and the rollout's ledger had no word of who approved
or rejected it once another run took the rollout over. That run now records it, as not acted on.
"""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from uuid import uuid4

import pytest

from prefect import flow
from prefect.client.orchestration import get_client
from prefect.input import keyset_from_paused_state
from prefect.states import Crashed, Paused, Running

from flows.approvals import ApprovalInput, unheard_answers
from flows.env import OWNER_PREFIX
from flows.rollback import rollback_recorded
from rollway.approvals import UNHEARD, UNHEARD_AFTER, auto_approve, unheard_transitions, waiting_prefix
from rollway.cli import ops
from rollway.ledger import Transition
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import rollout_report
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger, progressive_on
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by

QUESTION = "approval needed before 100%"


@flow(name="paused-and-died")
def paused_and_died() -> None:
    """Never run: its flow run is made by hand, paused, and left without a process."""


def dead_run_answered(action: str, *, waited_until: float, answer: bool = True, ended: bool = True,
                      asked_before: int = 0):
    """A flow run paused for rollway's form that said it waited until ``waited_until`` (wall
    clock) and then went silent, resumed from the UI with ``action`` by dana; left Crashed, as a
    run with no process ends up (``ended``), or Running, as the resume leaves it. ``asked_before``:
    pauses it made before, each leaving its form's two parts (nobody answered them). Returns the run."""
    key = f"approval-{uuid4().hex}"
    with get_client(sync_client=True) as client:
        run = client.create_flow_run(paused_and_died)
        client.set_flow_run_state(run.id, Running(), force=True)
        for _ in range(asked_before):
            earlier = f"paused-approval-{uuid4().hex}"
            client.create_flow_run_input(run.id, f"{earlier}-schema", "{}")
            client.create_flow_run_input(run.id, f"{earlier}-description", '"asked before"')
        paused = Paused(timeout_seconds=3600, pause_key=key, message=f"approval pause: {QUESTION}")
        paused.state_details.run_input_keyset = keyset = keyset_from_paused_state(paused)
        client.set_flow_run_state(run.id, paused, force=True)
        ApprovalInput.with_initial_data(description=f"## rollway: approval pause\n\n**{QUESTION}**\n\ntable",
                                        action="approve").save(keyset, flow_run_id=run.id)
        client.create_flow_run_input(run.id, f"{waiting_prefix(key)}0", json.dumps({"at": waited_until, "every": 30.0}))
        if answer:
            client.resume_flow_run(run.id, run_input={"action": action, "approver": "dana", "comment": "latency"})
        if ended:
            client.set_flow_run_state(run.id, Crashed(message="no process"), force=True)
        return client.read_flow_run(run.id)


def test_a_run_taking_over_records_the_answer_its_dead_holder_was_given_in_the_ui():
    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0,
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))])
    first = progressive_on(env, spec, auto_approve("alice"), phased=True)
    assert first.outcome == "holding", first.reason
    dead = dead_run_answered("reject", waited_until=time.time() - 600)
    service = env.targets.canary_service
    # The dead run held the rollout (its lease lapsed long ago).
    env.ledger.acquire(service, owner=f"{OWNER_PREFIX}{dead.id}", now=env.clock.now(), lease_seconds=1,
                       wall=env.clock.now() - 3600)

    resumed = progressive_on(env, spec, auto_approve("alice"), owner="run-2")

    assert resumed.outcome == "promoted", resumed.reason  # not acted on: the run asked again, and went on
    record = env.ledger.get(service)
    (unheard,) = [t for t in record.history if t.kind == UNHEARD]
    assert unheard.actor == "dana" and unheard.verdict == QUESTION
    assert unheard.comment.startswith(f"reject: latency (given to flow run {dead.name} ({dead.id}) at "), unheard.comment
    assert "after it had stopped saying it waits" in unheard.comment and "not acted on" in unheard.comment
    kinds = [t.kind for t in record.history]
    assert kinds.index(UNHEARD) == kinds.index("takeover") + 1
    report = rollout_report(record)
    assert "| dana | reject, not acted on (its run had stopped saying it waits) |" in report, report


def test_an_answer_a_live_run_took_is_not_recorded_again():
    """The run still said it waited when the answer came: it read the answer and recorded it."""
    assert unheard_answers(dead_run_answered("approve", waited_until=time.time()).id) == []
    assert unheard_answers(dead_run_answered("approve", waited_until=time.time() - 600, answer=False).id) == []


def test_the_answer_of_a_run_asked_again_for_weeks_before_its_process_died_is_found():
    """A pause nobody answers is asked again at each timeout (``approvals.on_timeout: hold``), each
    asking storing its form on the run: hourly for three weeks, over a thousand parts. Prefect gives
    them oldest first, up to the limit asked for, and the answer to the last pause, the one the run
    died in, was past it: found by nobody, recorded by nobody, and `rollway status` said nothing."""
    dead = dead_run_answered("reject", waited_until=time.time() - 600, asked_before=501)
    (unheard,) = unheard_answers(dead.id)
    assert (unheard.answer.action, unheard.answer.approver, unheard.question) == ("reject", "dana", QUESTION)


def test_an_answer_an_earlier_form_took_with_a_control_character_in_its_name_is_found_and_shown_escaped():
    """A run paused under an earlier rollway stored that form, which the server checks a resume
    against: a name with a control character passed it. Read with today's form, which refuses such
    a name, the answer was skipped as "not an answer to rollway's form": nobody recorded it, and
    `rollway status` said nothing of it. Found now, the name's control characters shown as escapes
    (the run's log prints it)."""
    dead = dead_run_answered("reject", waited_until=time.time() - 600, answer=False)
    with get_client(sync_client=True) as client:
        paused = next(state for state in client.read_flow_run_states(dead.id) if state.is_paused())
        # Stored as the earlier form's resume stored it: the server took it.
        client.create_flow_run_input(dead.id, paused.state_details.run_input_keyset["response"], json.dumps(
            {"action": "reject", "approver": "dana\x1b[2K\rmallory", "comment": "latency"}))
    (unheard,) = unheard_answers(dead.id)
    assert (unheard.answer.action, unheard.answer.approver, unheard.question) == (
        "reject", "dana\\x1b[2K\\rmallory", QUESTION), unheard


def test_status_says_the_holders_run_was_answered_after_it_died_and_what_to_do(monkeypatch, capsys):
    """The run shows Running, the person believed the rollout rolled back: status said nothing."""
    dead = dead_run_answered("reject", waited_until=time.time() - 600, ended=False)
    commands_see_a_rollout_owned_by(monkeypatch, dead)
    assert ops.status(targets_block=None, credentials_block=None) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert (f"flow run {dead.name} ({dead.id}), which holds the rollout, was answered reject by dana at "
            in said), said
    # As the ledger, the report and the logs say it: a live run whose every write was refused is silent too.
    assert f"{UNHEARD_AFTER} (it last said it waited at " in said and "nothing acted on the answer" in said, said
    assert "process had died" not in said, said
    # Silent is not dead: the advice said "Running with nothing running it", and a person whose run
    # lived (a proxy refusing its writes) ran progressive_rollout, which marked it Crashed and
    # stopped it without acting on the answer. Both cases now, and how to tell them apart.
    assert "its process died, or it lives and the Prefect API (or a proxy in front of it) refuses its " \
           "writes" in said, said
    assert "look at the worker that ran it" in said, said
    assert ("If its process is gone, it shows Running with nothing running it: run progressive_rollout, which marks "
            "it Crashed, takes the rollout over, records the answer and asks again") in said, said
    assert "If it lives, fix what refuses its writes and leave it: it acts on the answer once it reads it" in said, said
    assert "with nothing running it: run progressive_rollout" not in said.split("If its process is gone")[0], said
    assert "Prefect UI" not in said and "`rollway abort` rolls back in either case" in said


def test_abort_records_the_answer_the_dead_holders_run_was_given_before_rolling_back(monkeypatch, capsys):
    """Rolled back by `rollway abort`, the rollout's history had no word of dana's rejection."""
    import flows.rollback

    dead = dead_run_answered("reject", waited_until=time.time() - 600, ended=False)
    commands_see_a_rollout_owned_by(monkeypatch, dead)
    service = ops.connect(None, None)
    # The pause the dead run recorded before it paused (at 5 %, for 50 %), as its journal writes it.
    rollouts = service.ledger._rollouts[service.name]
    rollouts[-1] = rollouts[-1].model_copy(update={"history": (*rollouts[-1].history, Transition(
        at=1.0, kind="pause", actor="rollway", to_stage=1, comment=f"approval pause: {QUESTION}"))})
    rolled_back = []
    # The rollback flow itself is another test's: here, what the abort recorded before it.
    monkeypatch.setattr(flows.rollback, "rollback", lambda **kwargs: rolled_back.append(kwargs) or SimpleNamespace(
        done_by=None, steps=(), weights=None, canary_desired=0, flags_disabled=(), flags_kept=(), flags_held=()))
    code = ops.abort(approver="erin", reason="dana's answer never landed", flow_run=None, wait_seconds=0.5,
              targets_block=None, credentials_block=None)
    assert code == 0 and rolled_back, capsys.readouterr()
    record = service.ledger.get(service.name)
    kinds = [t.kind for t in record.history]
    assert kinds[-2:] == [UNHEARD, "rollback-start"], kinds
    assert record.history[-2].actor == "dana" and record.history[-2].comment.startswith("reject: latency (given to")
    assert record.history[-2].comment.endswith("not acted on, `rollway abort` rolls the rollout back)")
    # At the stage its pause asked about, as the rollback flow records it: the report's row said "-".
    assert record.history[-2].to_stage == 1, record.history[-2]
    out = " ".join(capsys.readouterr().out.split())
    assert f"flow run {dead.name} ({dead.id}) was answered reject by dana at " in out, out
    assert f"{UNHEARD_AFTER}: nothing acted on it; recorded in the ledger" in out, out
    assert "process had died" not in out, out


def test_an_abort_retried_does_not_record_the_answer_its_first_try_recorded_again(monkeypatch, capsys):
    """A first `rollway abort` that recorded dana's answer and stopped before the rollback's start
    (Ctrl-C, a throttled ledger): its retry recorded the same answer a second time."""
    import flows.rollback

    dead = dead_run_answered("reject", waited_until=time.time() - 600, ended=False)
    commands_see_a_rollout_owned_by(monkeypatch, dead)
    service = ops.connect(None, None)
    first = unheard_transitions(unheard_answers(dead.id), 1.0, then="`rollway abort` rolls the rollout back")
    service.ledger.record(service.name, owner=None, now=1.0, rollout=service.ledger.get(service.name).rollout_id,
                          transition=first[0])
    monkeypatch.setattr(flows.rollback, "rollback", lambda **kwargs: SimpleNamespace(
        done_by=None, steps=(), weights=None, canary_desired=0, flags_disabled=(), flags_kept=(), flags_held=()))
    assert ops.abort(approver="erin", reason="again", flow_run=None, wait_seconds=0.5, targets_block=None,
                     credentials_block=None) == 0, capsys.readouterr()
    record = service.ledger.get(service.name)
    assert [t.comment for t in record.history if t.kind == UNHEARD] == [first[0].comment], record.history
    assert "recorded in the ledger" not in capsys.readouterr().out


def test_an_answer_recorded_unheard_after_a_reject_does_not_hide_the_rollback_owed():
    """`rollway abort` records the dead holder's unheard answers just before the rollback's start:
    stopped between the two (Ctrl-C, a throttled ledger), the rollout's last word was the unheard
    entry, and the next run resumed the rollout a person had rejected, asking again."""
    from rollway.approvals import ApprovalAnswer, UnheardAnswer, unheard_transitions
    from rollway.ledger import Transition
    from rollway.phases import RolloutPhase

    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0,
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))])
    assert progressive_on(env, spec, auto_approve("alice"), phased=True).outcome == "holding"
    service = env.targets.canary_service
    now = env.clock.now()
    held = env.ledger.acquire(service, owner="run-1", now=now, lease_seconds=600)
    reject = Transition(at=now, kind="reject", actor="bob", comment="reject: 5xx on checkout")
    unheard = unheard_transitions([UnheardAnswer(
        answer=ApprovalAnswer(action="approve", approver="dana"), run="dead-run (1234)", answered_at=time.time() - 60,
        silent_since=time.time() - 900, question=QUESTION)], now)
    env.ledger.record(service, owner="run-1", now=now, lease_seconds=600, rollout=held.rollout_id, transition=reject,
                      followed_by=tuple(unheard))

    resumed = progressive_on(env, spec, auto_approve("alice"), owner="run-2")

    record = env.ledger.get(service)
    assert record.phase is RolloutPhase.ROLLED_BACK, (resumed, [t.kind for t in record.history])
    assert record.last_transition("rollback-start").actor == "bob", record.history


def test_a_dead_paused_run_resumed_then_cancelled_in_the_ui_has_ended_for_the_run_taking_its_rollout_over(caplog):
    """Resumed from the UI after its process died (Running, nothing running it), then cancelled
    there: the run stayed Cancelling for ever (only its own process finishes a cancellation), and
    every run of its rollout was refused and told to cancel it, which could not work."""
    from prefect.states import Cancelling

    from flows.env import owner_finished

    env = env_with_ledger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0,
                       phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))])
    assert progressive_on(env, spec, auto_approve("alice"), phased=True).outcome == "holding"
    dead = dead_run_answered("approve", waited_until=time.time() - 600, ended=False)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(dead.id, Cancelling(message="cancelled from the UI"), force=True)
    service = env.targets.canary_service
    env.ledger.acquire(service, owner=f"{OWNER_PREFIX}{dead.id}", now=env.clock.now(), lease_seconds=1,
                       wall=env.clock.now() - 3600)

    resumed = progressive_on(env, spec, auto_approve("alice"), owner="run-2", finished=owner_finished)

    assert resumed.outcome == "promoted", resumed.reason
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(dead.id).state
    assert final.is_crashed() and "it stopped saying it waits for an answer (it last said" in final.message, final
    assert "its process died, or, if it lives, the Prefect API" in final.message, final.message
    assert "before it was resumed, and nothing ran it since" in final.message, final.message
    said = " ".join(caplog.text.split())
    assert f"flow run {dead.name} ({dead.id}), is Cancelling, but it stopped saying it waits" in said, said


def test_a_live_run_cancelled_at_its_pause_is_not_taken_for_dead():
    """Still saying it waited when the cancellation came, it is rolling back in its own hooks,
    however slowly: the rollout stays its own."""
    from prefect.states import Cancelling

    from flows.env import owner_finished

    live = dead_run_answered("approve", waited_until=time.time(), answer=False, ended=False)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(live.id, Cancelling(message="cancelled from the UI"), force=True)
        assert owner_finished(f"{OWNER_PREFIX}{live.id}") is False
        assert client.read_flow_run(live.id).state.is_cancelling()
    answered = dead_run_answered("approve", waited_until=time.time(), ended=False)  # a live run, resumed
    assert owner_finished(f"{OWNER_PREFIX}{answered.id}") is False


PHASED = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)], monitor_seconds=0,
                     phases=[WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(100,))])


@flow
def rollback_on(env, reason):
    return rollback_recorded(env, reason, actor="erin")


def held_by_a_dead_run_answered(action: str):
    """A rollout at 5 %, held by a run that died paused and was then answered ``action`` by dana."""
    env = env_with_ledger()
    assert progressive_on(env, PHASED, auto_approve("alice"), phased=True).outcome == "holding"
    dead = dead_run_answered(action, waited_until=time.time() - 600, ended=False)
    env.ledger.acquire(env.targets.canary_service, owner=f"{OWNER_PREFIX}{dead.id}", now=env.clock.now(),
                       lease_seconds=1, wall=env.clock.now() - 3600)
    return env, dead


def test_the_rollback_flow_records_the_answer_the_dead_holders_run_was_given_once_the_traffic_is_back(
        monkeypatch, capsys):
    """Rolled back by the rollback flow (run by hand, once dana's rejection did nothing), the
    rollout's history had no word of her answer."""
    import flows.approvals

    env, dead = held_by_a_dead_run_answered("reject")
    # The pause the dead run recorded before it paused (at 5 %, for 100 %), as its journal writes it.
    rollouts = env.ledger._rollouts[env.targets.canary_service]
    rollouts[-1] = rollouts[-1].model_copy(update={"history": (*rollouts[-1].history, Transition(
        at=env.clock.now(), kind="pause", actor="rollway", to_stage=1,
        comment=f"approval pause: {QUESTION}; unanswered by 2027-01-15 10:00:00 UTC (wall clock) the rollout rolls back"))})
    real = flows.approvals.unheard_answers
    seen = []  # the load balancer when Prefect was asked: never before the traffic is back
    monkeypatch.setattr(flows.approvals, "unheard_answers",
                        lambda run_id: seen.append(env.router.weights) or real(run_id))

    result = rollback_on(env, "dana's rejection never landed")

    assert result.weights == Weights(stable=100, canary=0)
    assert seen == [Weights(stable=100, canary=0)], seen
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    kinds = [t.kind for t in record.history]
    assert kinds.index("rollback-start") < kinds.index(UNHEARD) < kinds.index("rollback"), kinds
    (unheard,) = [t for t in record.history if t.kind == UNHEARD]
    assert unheard.actor == "dana" and unheard.verdict == QUESTION
    given = f"reject: latency (given to flow run {dead.name} ({dead.id}) at "
    assert unheard.comment.startswith(given), unheard.comment
    assert unheard.comment.endswith("not acted on, the rollout was rolled back since)"), unheard.comment
    # At the stage its pause asked about: the rollback it did not stop ended the wait the report
    # placed it by, and its row gave no stage ("-").
    assert unheard.to_stage == 1, unheard
    report = rollout_report(record)
    (row,) = [x for x in report.splitlines() if "| dana | reject, not acted on" in x]
    assert "| reject, not acted on (its run had stopped saying it waits) | 100% |" in row, row
    # Nor is the pause she answered said unanswered above her answer.
    assert "| **no answer taken** (not acted on: reject by dana, its run had stopped saying it waits) | 100% |" in report, report
    # `rollway status` shows it in the rolled-back rollout's history.
    monkeypatch.setattr(ops, "connect", lambda *a: ops.Service(
        targets=env.targets, targets_block=None, credentials_block=None, ledger=env.ledger, router=env.router))
    assert ops.status(targets_block=None, credentials_block=None) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "UTC unheard dana reject: latency" in said, said  # one line a transition: output is not a terminal


def test_an_answer_abort_recorded_before_the_rollback_is_not_recorded_again_by_it():
    env, dead = held_by_a_dead_run_answered("reject")
    service = env.targets.canary_service
    now = env.clock.now()
    before = unheard_transitions(unheard_answers(dead.id), now, then="`rollway abort` rolls the rollout back")
    env.ledger.record(service, owner=None, now=now, rollout=env.ledger.get(service).rollout_id, transition=before[0])

    rollback_on(env, "aborted by erin")

    record = env.ledger.get(service)
    assert [t.comment for t in record.history if t.kind == UNHEARD] == [before[0].comment]


def test_a_rollback_that_cannot_read_prefect_still_rolls_back_and_says_the_answer_is_not_recorded(monkeypatch, caplog):
    import httpx

    import flows.approvals

    env, dead = held_by_a_dead_run_answered("reject")

    def unreachable(run_id):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(flows.approvals, "unheard_answers", unreachable)

    result = rollback_on(env, "dana's rejection never landed")

    assert result.weights == Weights(stable=100, canary=0)
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and UNHEARD not in [t.kind for t in record.history]
    said = " ".join(caplog.text.split())
    assert (f"could not read whether flow run {dead.id}, which held {env.targets.canary_service}'s rollout, was "
            "answered after it had stopped saying it waits (connection refused): any such answer is not in the ledger") in said, said


@flow(name="answered-as-an-outage-ended")
def answered_as_an_outage_ended() -> str:
    from flows.approvals import prefect_approver
    from rollway.decide import Pause
    from rollway.spec import Approvals

    answer = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=1)(
        Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    return f"{answer.action} by {answer.approver}"


def test_an_answer_a_live_run_took_as_an_outage_ended_is_not_taken_for_one_nobody_heard(monkeypatch):
    """A paused run says every 30 s that it still waits, and cannot while the Prefect API is away.
    Answered the moment the API came back, before its next saying, its answer read as one given
    after its process had died: `rollway status` said nothing had acted on it (and to have the
    live run marked Crashed), and `rollway abort` recorded that in the ledger, of an answer the run
    had taken and acted on. The run's sayings are dated 10 minutes back (the outage's silence)
    until the answer is given."""
    import threading

    import flows.approvals
    from tests.flows.test_approvals import paused_with_form

    silent = {"s": 600.0}
    monkeypatch.setattr(flows.approvals, "time", SimpleNamespace(
        monotonic=time.monotonic, sleep=time.sleep, time=lambda: time.time() - silent["s"]))
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(answered_as_an_outage_ended()), daemon=True)
    thread.start()
    run = paused_with_form("answered-as-an-outage-ended", timeout=60)
    with get_client(sync_client=True) as client:
        key = run.state.state_details.pause_key
        deadline = time.monotonic() + 30
        while not client.filter_flow_run_input(run.id, waiting_prefix(key), 10, set()):
            assert time.monotonic() < deadline, "the run never said it waited"
            time.sleep(0.1)
        silent["s"] = 0.0
    ops.resume(run.id, {"action": "approve", "approver": "dana", "comment": ""}, paused=run.state)
    thread.join(60)
    assert outcome == ["approve by dana"], outcome
    assert unheard_answers(run.id) == []


def test_a_retry_of_the_crashed_run_records_the_answer_it_was_given_while_dead_and_asks_again():
    """The Prefect UI's Retry of the crashed run keeps its flow run, so the rollout is still held by
    it: the answer given to it in the UI while it was dead was never looked for. Its pause, past its
    deadline, rolled back "with no answer" over dana's approval, which no record kept. A second
    Retry (the first died again before it paused on Prefect) finds that answer again: recorded once."""
    from tests.flows.test_pause_taken_over import approving, spec
    from tests.flows.test_progressive_fakes import Killed, kinds

    env = env_with_ledger()
    dead = dead_run_answered("approve", waited_until=time.time() - 600)
    owner = f"{OWNER_PREFIX}{dead.id}"

    def dies(pause, summary):
        env.clock.sleep(3000)
        raise Killed("the worker running the rollout is restarted")

    with pytest.raises(Killed):
        progressive_on(env, spec(), dies, owner=owner)
    env.clock.sleep(700)  # retried 62 minutes into a pause that rolls back after 60
    with pytest.raises(Killed):
        progressive_on(env, spec(), dies, owner=owner)  # asked anew, with a new deadline; it dies again
    asked: list = []
    result = progressive_on(env, spec(), approving(env, asked, "erin"), owner=owner)
    assert result.outcome == "promoted", result
    assert "timeout" not in kinds(env), kinds(env)
    record = env.ledger.get(env.targets.canary_service)
    (unheard,) = [t for t in record.history if t.kind == UNHEARD]
    assert unheard.actor == "dana" and unheard.comment.startswith(f"approve: latency (given to flow run {dead.name} ("), \
        unheard.comment
    assert record.last_transition("approve").actor == "erin", record.history
