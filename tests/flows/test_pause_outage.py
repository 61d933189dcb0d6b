"""A Prefect API that cannot be reached at the very moment a run pauses for an answer.

The wait for an answer rode out an outage, but the pause itself did not: a server restart at
that moment failed the run, and its failure hook rolled back a rollout nobody had been asked
about. The pause is now tried again until the API answers, and a try whose answer the outage
lost (the pause landed, the reply did not) is found on the run rather than refused.
"""

from __future__ import annotations

import re
import threading
import time
from uuid import uuid4

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

import flows.approvals
from flows.approvals import prefect_approver
from rollway.cli.ops import resume
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_approvals import ledger_env, paused_with_form

QUESTION = "approval needed before 25%"


@flow(name="approval-through-an-outage")
def pauses_once() -> str:
    approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=1)
    answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    return f"{answer.action} by {answer.approver}: {answer.comment}"


def answered_by_dana() -> tuple[threading.Thread, list[str]]:
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(pauses_once()), daemon=True)
    thread.start()
    run = paused_with_form("approval-through-an-outage", timeout=90)
    resume(run.id, {"action": "approve", "approver": "dana", "comment": "fine"}, paused=run.state)
    thread.join(60)
    return thread, outcome


def a_canary_failing_behind_an_outage(monkeypatch, reads: int, skipping=lambda: None):
    """A ledger environment whose canary starts failing as the run pauses, when the Prefect API
    goes away for ``reads`` reads of the run's state, each a minute of the rollout clock (the
    watch's interval; ``skipping`` is called with each). Returns it, the outage's record (with the
    weights when the API came back) and the approver that starts both."""
    from rollway.fakes import steady
    from tests.flows.test_approvals import ledger_env

    env = ledger_env()
    real_read = SyncPrefectClient.read_flow_run
    outage = {"on": False, "reads": 0, "weights when back": None}

    def away_for_a_while(self, flow_run_id):
        if outage["on"] and outage["reads"] < reads:
            outage["reads"] += 1
            env.clock.sleep(60)
            skipping()
            raise httpx.ConnectError("All connection attempts failed")
        if outage["on"] and outage["weights when back"] is None:
            outage["weights when back"] = env.router.weights
        return real_read(self, flow_run_id)

    approver = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=0.05)

    def asked(pause, summary, watch=None):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        outage["on"] = True
        return approver(pause, summary, watch=watch)

    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", away_for_a_while)
    return env, outage, asked


def rolled_back_through_it(env, asked, timeout: float, caplog):
    """A rollout of ``env`` asked through ``asked`` (``timeout``: its pause's), which ends Completed,
    rolled back in the ledger; returns its state and result."""
    import logging

    from flows.progressive import run_progressive
    from rollway.phases import RolloutPhase
    from tests.flows.test_approvals import spec

    @flow(name="rollout-through-an-outage")
    def rollout():
        return run_progressive(env, spec(timeout=timeout, on_timeout="rollback"), asked, owner="run-1", phased=False)

    with caplog.at_level(logging.INFO):
        state = rollout(return_state=True)
    assert state.is_completed(), state
    result = state.result()
    assert result.outcome == "rolled_back", result.reason
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK
    return state, result


def test_a_pause_proposed_while_the_api_is_away_is_made_once_it_answers(monkeypatch, caplog):
    real = flows.approvals.propose_state
    calls: list[int] = []

    def away_twice(*args, **kwargs):
        calls.append(1)
        if len(calls) <= 2:
            raise httpx.ConnectError("All connection attempts failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(flows.approvals, "propose_state", away_twice)
    _thread, outcome = answered_by_dana()
    assert outcome == ["approve by dana: fine"]
    assert "the Prefect API cannot be reached (All connection attempts failed): still trying to pause for an " \
           "answer" in caplog.text, caplog.text


def test_a_pause_and_a_form_whose_replies_the_outage_lost_are_taken_as_made(monkeypatch):
    real_propose = flows.approvals.propose_state
    real_store = SyncPrefectClient.create_flow_run_input
    lost: set[str] = set()

    def landed_then_lost(*args, **kwargs):
        state = real_propose(*args, **kwargs)
        if "pause" not in lost:
            lost.add("pause")
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return state

    def stored_then_lost(self, flow_run_id, key, value, sender=None):
        real_store(self, flow_run_id, key, value, sender)
        if key not in lost and "schema" in key:
            lost.add(key)
            raise httpx.ReadError("connection reset by peer")

    monkeypatch.setattr(flows.approvals, "propose_state", landed_then_lost)
    monkeypatch.setattr(SyncPrefectClient, "create_flow_run_input", stored_then_lost)
    _thread, outcome = answered_by_dana()
    assert outcome == ["approve by dana: fine"]
    assert len(lost) == 2, lost


def test_a_canary_failing_while_the_api_is_away_is_rolled_back_before_it_answers_again(monkeypatch, caplog):
    """The Prefect API goes away as the run pauses, and the canary starts failing. The wait rode
    the outage out without judging anything: users got the canary's errors for as long as the API
    was down. The looks need AWS alone: the run rolls back during the outage, and leaves its pause
    once the API answers again."""
    import logging

    from flows.progressive import run_progressive
    from rollway.model import Weights
    from rollway.phases import RolloutPhase
    from tests.flows.test_approvals import spec

    env, outage, asked = a_canary_failing_behind_an_outage(monkeypatch, reads=40)
    import flows.journal

    tables: list[Weights] = []  # the weights when each stage table went to the API (each try waits on it)
    real_table = flows.journal.create_table_artifact
    monkeypatch.setattr(flows.journal, "create_table_artifact",
                        lambda **given: tables.append(env.router.weights) or real_table(**given))

    @flow(name="rollout-through-an-outage")
    def rollout():
        return run_progressive(env, spec(timeout=60, on_timeout="rollback"), asked, owner="run-1", phased=False)

    with caplog.at_level(logging.INFO):
        result = rollout()
    assert outage["weights when back"] == Weights(stable=100, canary=0), outage
    # The pause's row went to the API once the traffic was back: a call to an API that is away
    # waits out its client's retries (a minute on a 503), and users are not to wait with it.
    assert tables[-1] == Weights(stable=100, canary=0), tables
    assert result.outcome == "rolled_back" and "while the run waited for an answer" in result.reason, result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    assert env.notifier.messages[-1][0].startswith("Rollback")
    said = [r.getMessage() for r in caplog.records]
    assert any("cannot be reached to leave the pause: rolling back now" in m for m in said), said
    assert any("the rollback was done while it could not be reached" in m for m in said), said
    # Said once, by the look that found it; neither the approver nor the rollback path repeats it.
    assert sum(result.reason.split(" (judged")[0] in m for m in said) == 1, said


def test_a_run_rolled_back_during_an_outage_longer_than_its_pause_leaves_the_pause_once_the_api_answers(
        monkeypatch, caplog):
    """The canary fails while the Prefect API is away, and the run rolls back meanwhile; the API
    stays away past the pause's deadline and its grace. The run gave up then: its error failed it,
    the Prefect run stayed Paused, and nobody was told the rollback was done. It now keeps trying
    (the rollout is safe, only the run's state is left) and, once the API answers, leaves its pause
    and ends as for a shorter outage. The approver's clock is a fake one the outage moves on."""
    import types

    from rollway.model import Weights

    # The approver's monotonic clock: real time plus what the outage skipped, a minute a try.
    skipped = {"s": 0.0}
    monkeypatch.setattr(flows.approvals, "time", types.SimpleNamespace(
        monotonic=lambda: time.monotonic() + skipped["s"], time=time.time,
        sleep=lambda s: time.sleep(min(s, 0.05))))
    # 30 minutes away: past the 60 s pause and its 600 s grace.
    env, outage, asked = a_canary_failing_behind_an_outage(
        monkeypatch, reads=30, skipping=lambda: skipped.update(s=skipped["s"] + 60.0))

    _state, _result = rolled_back_through_it(env, asked, 60, caplog)
    assert outage["reads"] == 30, outage
    assert env.router.weights == Weights(stable=100, canary=0)
    said = [r.getMessage() for r in caplog.records]
    assert any("the rollback was done while it could not be reached" in m for m in said), said


def test_an_outage_that_lasts_is_said_again_now_and_then_with_how_long_what_goes_on_and_what_comes_next(caplog):
    """The Prefect API went away for 20 minutes: the run said so once and then nothing until it
    answered, which read, to the person on call, as a run that had hung. It says it again a
    minute on, then at doubling gaps (never every poll), each time with how long the API has been
    away, what the run does meanwhile and what it does once the API answers. The clock is the
    test's: 30 s a poll."""
    import logging

    now = {"s": 0.0}
    tries: list[float] = []

    def away_for_20_minutes():
        tries.append(now["s"])
        if now["s"] < 1200:
            raise httpx.ConnectError("All connection attempts failed")
        return "answered"

    @flow(name="a-20-minute-outage")
    def rides_it_out() -> str:
        return flows.approvals._through_outages(
            away_for_20_minutes, give_up_at=3600.0, poll_interval=30, doing="still waiting for an answer",
            then="the run takes the answer", clock=lambda: now["s"], sleep=lambda s: now.update(s=now["s"] + s))

    with caplog.at_level(logging.INFO):
        assert rides_it_out() == "answered"
    said = [(r.getMessage()) for r in caplog.records if "Prefect API" in r.getMessage()]
    again = [m for m in said if "still cannot be reached" in m]
    assert len(tries) == 41 and len(again) == 5, (len(tries), said)
    assert [m.split(" after it went away")[0].split("reached, ")[1] for m in again] == [
        "1 min", "3 min", "7 min", "12 min", "17 min"], again
    assert all("(All connection attempts failed): still waiting for an answer; once it answers, the run takes the "
               "answer; if it is still away" in m for m in again), again
    assert "if it is still away 43 min from now (the pause's timeout and 10 min of grace), the run gives up" in again[-1]
    assert said[-1] == "the Prefect API answers again after 20 min", said


def test_an_outage_answered_by_a_proxy_is_said_without_the_password_of_the_api_url(caplog):
    """A 503 from a proxy in front of the API is an outage ridden out; httpx's words for it quote
    the URL asked, and a PREFECT_API_URL behind basic auth its password with it, into the run's log."""
    import logging

    now = {"s": 0.0}

    def proxy_away_for_2_minutes():
        if now["s"] < 120:
            request = httpx.Request("GET", "https://ops:s3cr3t@prefect.internal/api/flow_runs/1")
            raise httpx.HTTPStatusError(f"Server error '503 Service Unavailable' for url '{request.url}'",
                                        request=request, response=httpx.Response(503, request=request))
        return "answered"

    @flow(name="an-outage-behind-a-proxy")
    def rides_it_out() -> str:
        return flows.approvals._through_outages(
            proxy_away_for_2_minutes, give_up_at=3600.0, poll_interval=30, clock=lambda: now["s"],
            sleep=lambda s: now.update(s=now["s"] + s))

    with caplog.at_level(logging.INFO):
        assert rides_it_out() == "answered"
    said = [r.getMessage() for r in caplog.records if "cannot be reached" in r.getMessage()]
    assert len(said) == 2 and "still cannot be reached" in said[1], said
    assert all("s3cr3t" not in m and "for url 'https://ops:***@prefect.internal/api/flow_runs/1'" in m
               for m in said), said


def test_the_approver_says_through_a_long_outage_that_it_judges_the_canary_and_takes_the_answer_after(
        monkeypatch, caplog):
    """A pause whose canary is judged meanwhile (its watch) rides out a 20-minute outage, answered
    during it. What the run says meanwhile names the judging on AWS alone and what it does once
    the API answers; the answer is then taken."""
    import logging
    import types

    skipped = {"s": 0.0}
    outage = {"on": False, "reads": 0, "thread": None}
    # The run's clock skips its waits only during the outage: skipped while the test still waited
    # for the pause to show, the polls' 30 s each (0.01 s real) could add up past the pause's hour
    # on a loaded machine, and the run took the timeout ("reject by timeout"), not dana's answer.
    monkeypatch.setattr(flows.approvals, "time", types.SimpleNamespace(
        monotonic=lambda: time.monotonic() + skipped["s"], time=time.time,
        sleep=lambda s: (skipped.update(s=skipped["s"] + s) if outage["on"] else None) or time.sleep(0.01)))
    real_read = SyncPrefectClient.read_flow_run

    def away_for_20_minutes(self, flow_run_id):
        if outage["on"] and threading.current_thread() is outage["thread"] and outage["reads"] < 40:
            outage["reads"] += 1
            raise httpx.ConnectError("All connection attempts failed")
        return real_read(self, flow_run_id)

    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", away_for_20_minutes)
    looks: list[int] = []

    @flow(name="approval-through-a-long-outage")
    def judged_meanwhile() -> str:
        approver = prefect_approver(Approvals(timeout_seconds=3600, on_timeout="rollback"), poll_interval=30)
        answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary",
                          watch=lambda: looks.append(1))
        return f"{answer.action} by {answer.approver}"

    outcome: list[str] = []
    with caplog.at_level(logging.INFO):
        thread = threading.Thread(target=lambda: outcome.append(judged_meanwhile()), daemon=True)
        outage["thread"] = thread
        thread.start()
        run = paused_with_form("approval-through-a-long-outage", timeout=90)
        outage["on"] = True
        # As `rollway promote` answers: the client's resume alone returned quietly when the test
        # harness's server aborted it (its state validation erred, its database busy under a
        # loaded suite), and the run polled through its pause's hour and took the timeout.
        resume(run.id, {"action": "approve", "approver": "dana", "comment": ""}, paused=run.state)
        thread.join(60)
    assert outcome == ["approve by dana"] and outage["reads"] == 40, (outcome, outage)
    said = [r.getMessage() for r in caplog.records if "Prefect API" in r.getMessage()]
    again = [m for m in said if "still cannot be reached" in m]
    assert 3 <= len(again) <= 6, said
    assert all("still waiting for an answer; meanwhile the run judges the canary on AWS alone, and rolls the "
               "rollout back on its own if the canary fails; once it answers, the run takes the answer given "
               "meanwhile" in m
               for m in again), again
    assert len(looks) >= 40, len(looks)
    assert any(m.startswith("the Prefect API answers again after 20 min") for m in said), said


@pytest.mark.parametrize("landed", [False, True], ids=["never made", "made, its answer lost"])
def test_a_canary_failing_while_the_api_is_away_at_the_very_pause_is_rolled_back_before_it_answers(
        monkeypatch, caplog, landed):
    """The Prefect API goes away as the run pauses, and the canary starts failing. The wait for
    an answer judged the canary through an outage, but the pause itself (tried again until the
    API answers, up to the pause's timeout and its grace: over an hour by default) judged
    nothing: users got the canary's errors for as long as the API was down. The pause's tries now
    look too, and the run rolls back during the outage; once the API answers it ends, Running (a
    try of the pause that landed, its answer lost, is left)."""
    from rollway.fakes import steady
    from rollway.model import Weights
    from tests.flows.test_approvals import ledger_env

    env = ledger_env()
    real_propose, real_read = flows.approvals.propose_state, SyncPrefectClient.read_flow_run
    outage = {"on": False, "tries": 0, "weights when back": None}

    def away_for_a_while(call):
        """``call`` through an API away for its first 40 tries, each a minute of the rollout clock
        (``landed``: the first one lands, and only its answer is lost)."""
        if outage["on"] and outage["tries"] < 40:
            if landed and outage["tries"] == 0:
                call()
            outage["tries"] += 1
            env.clock.sleep(60)
            raise httpx.ConnectError("All connection attempts failed")
        if outage["on"] and outage["weights when back"] is None:
            outage["weights when back"] = env.router.weights
        return call()

    monkeypatch.setattr(flows.approvals, "propose_state",
                        lambda client, state, run_id, leaving=None: away_for_a_while(
                            lambda: real_propose(client, state, run_id, leaving)))
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run",
                        lambda client, run_id: away_for_a_while(lambda: real_read(client, run_id)))
    approver = prefect_approver(Approvals(timeout_seconds=3600, on_timeout="rollback"), poll_interval=0.05)

    def asked(pause, summary, watch=None):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        outage["on"] = True
        return approver(pause, summary, watch=watch)

    state, result = rolled_back_through_it(env, asked, 3600, caplog)
    assert "while the run waited for an answer" in result.reason, result.reason
    assert outage["weights when back"] == Weights(stable=100, canary=0), outage
    said = [r.getMessage() for r in caplog.records]
    # The pause was never known to be made: the run said "the pause is left" of a pause nobody was shown.
    assert any("cannot be reached to pause the run: rolling back now; once the API answers again, the run goes on "
               "without the pause (leaving it, if a try of it landed)" in m for m in said), said
    assert not any("leave the pause" in m or "the run left its pause" in m for m in said), said
    ended = ("the approval pause made while the Prefect API came and went is left, unanswered" if landed
             else "the approval pause was not made")
    assert any(m.startswith(ended + ": the run's look at the canary ended it first") for m in said), said
    assert any("the run went on without its pause once the Prefect API answered again; the rollback was done while "
               "it could not be reached" in m for m in said), said
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run_id)
        tables = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    # No second pause asked once the API answered, and the run ends out of any pause it made.
    assert sum(s.is_paused() for s in states) == int(landed), [s.name for s in states]
    assert not states[-1].is_paused(), [s.name for s in states]
    # The pause's table sent once, by the rollback done during the outage (the stage's own, once, as it passed).
    stage = sorted(a.key for a in tables if a.key and "-stage-" in a.key)
    assert len(stage) == 2 and stage[1] == stage[0] + "-pause", stage


@pytest.mark.parametrize("after", [0, 3], ids=["the API back as the look ends it", "rolled back while it is away"])
def test_an_answer_given_while_the_api_came_and_went_to_a_pause_the_canary_ended_is_said_and_recorded(
        monkeypatch, caplog, after):
    """The run pauses and stores its form; the Prefect API goes away, comes back for a moment in
    which dana answers approve in the UI, and goes away again, while the canary starts failing.
    The run's look ends the pause it was still making (it rolls back: on AWS alone, ``after``
    looks later, while the API is still away). The run said "the approval pause was not made" and
    never read dana's answer: neither its log nor the ledger said it had come, nor that the
    canary's look came first."""
    from rollway.fakes import steady
    from rollway.reports import rollout_report
    from tests.flows.test_approvals import ledger_env

    env = ledger_env()
    real_store, real_read = SyncPrefectClient.create_flow_run_input, SyncPrefectClient.read_flow_run
    outage = {"armed": False, "on": False, "watch": None, "later": 0}

    def away() -> None:
        """One call to the API that is away: a minute of the rollout clock, so the watch looks."""
        watch = outage["watch"]
        if watch.ended is not None:
            outage["later"] += 1
            if outage["later"] > after:
                outage["on"] = False
                return
        env.clock.sleep(60)
        raise httpx.ConnectError("All connection attempts failed")

    def stored_then_away(self, flow_run_id, key, value, sender=None):
        if outage["on"]:
            away()
        result = real_store(self, flow_run_id, key, value, sender)
        if outage["armed"] and "schema" in key:
            # The form's schema landed; the API comes back a moment later, dana answers, and it goes.
            outage["armed"] = False
            outage["answering"] = time.time()
            self.resume_flow_run(flow_run_id, run_input={"action": "approve", "approver": "dana", "comment": "fine"})
            outage["answered"] = time.time()
            outage["on"] = True
            away()
        return result

    def read_unless_away(self, flow_run_id):
        if outage["on"]:
            away()
        return real_read(self, flow_run_id)

    monkeypatch.setattr(SyncPrefectClient, "create_flow_run_input", stored_then_away)
    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", read_unless_away)
    approver = prefect_approver(Approvals(timeout_seconds=60, on_timeout="rollback"), poll_interval=0.05)

    def asked(pause, summary, watch=None):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        outage.update(armed=True, watch=watch)
        return approver(pause, summary, watch=watch)

    _state, result = rolled_back_through_it(env, asked, 60, caplog)
    assert "while the run waited for an answer" in result.reason, result.reason
    said = [r.getMessage() for r in caplog.records]
    assert not any("pause was not made" in m or "left, unanswered" in m or "ends unanswered" in m for m in said), said
    assert any(m.startswith("the approval pause made while the Prefect API came and went was answered approve by "
                            "dana (fine) before the run could read it: the run's look at the canary ended it first")
               for m in said), said
    assert any(m.startswith("dana's answer (approve) not applied: the run's look at the canary") for m in said), said
    record = env.ledger.get(env.targets.canary_service)
    if after:
        (entry,) = [t for t in record.history if t.actor == "dana"]
        assert entry.comment.startswith("approve: fine; not applied: the run's look at the canary"), entry
        assert "rolled the rollout back while the Prefect API could not be reached" in entry.comment, entry
        assert [t.kind for t in record.history].index(entry.kind) > [t.kind for t in record.history].index("rollback")
        # When dana gave it (the run read it only once the API came back): stamped when it was read, the
        # entry put the answer after the rollback it came before.
        assert outage["answering"] - 1 <= entry.answered_at <= outage["answered"] + 1, (entry, outage)
    else:
        (refused,) = record.refused_answers
        assert (refused.actor, refused.action) == ("dana", "approve"), refused
        assert refused.reason.startswith("not applied: the run's look at the canary came first"), refused
    assert "dana" in rollout_report(record)


def test_an_answer_given_as_the_api_went_away_from_a_pause_the_canary_then_ended_is_said_and_recorded(
        monkeypatch, caplog):
    """Dana answers approve just as the Prefect API goes away; the canary fails meanwhile, and the
    run rolls back on AWS alone. Once the API answers the run finds dana's answer: it said "the
    approval pause ends unanswered", then that the answer was not applied as "the rollout was
    rolled back before it came" (it came first), and the ledger had no word of it."""
    from prefect.context import FlowRunContext

    def dana_answers() -> None:
        if not answered:
            answered.append(FlowRunContext.get().flow_run.id)
            with get_client(sync_client=True) as client:
                client.resume_flow_run(answered[0], run_input={"action": "approve", "approver": "dana",
                                                               "comment": "fine"})

    answered: list = []
    env, outage, asked = a_canary_failing_behind_an_outage(monkeypatch, reads=5, skipping=dana_answers)
    _state, result = rolled_back_through_it(env, asked, 60, caplog)
    assert answered and "while the run waited for an answer" in result.reason, result.reason
    said = [r.getMessage() for r in caplog.records]
    assert not any("ends unanswered" in m or "before it came" in m for m in said), said
    assert any(m.startswith("the approval pause ends as it was answered approve by dana (fine): the run's look at "
                            "the canary came first") for m in said), said
    assert any(m.startswith("dana's answer (approve) not applied: the run's look at the canary ended the pause "
                            "before the run could read it, and rolled the rollout back while the Prefect API could "
                            "not be reached") for m in said), said
    record = env.ledger.get(env.targets.canary_service)
    (entry,) = [t for t in record.history if t.actor == "dana"]
    assert entry.kind == "not-applied" and entry.comment.startswith("approve: fine; not applied:"), entry


def expired_in_an_outage(answer: str | None):
    """A ``propose_state`` whose pause lands with its reply lost to an outage that outlasts the pause:
    back past its timeout, the server has failed the run, and ``answer`` (the form's JSON; None: none)
    was stored with a resume the server accepted at the deadline."""
    from prefect.states import Failed

    real = flows.approvals.propose_state
    made: list = []

    def expired_while_away(client, state, run_id, leaving=None):
        if not state.is_paused():
            return real(client, state, run_id, leaving)
        if not made:  # the pause lands; its reply is lost to the outage
            # The outage outlasts the pause: its deadline is made past rather than waited for.
            state.state_details.pause_timeout = state.state_details.pause_timeout.subtract(minutes=3)
            made.append(real(client, state, run_id, leaving))
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        if answer is not None:  # stored with a resume the server accepted at the deadline
            client.create_flow_run_input(run_id, made[0].state_details.run_input_keyset["response"], answer)
        # Back past the pause's timeout: the server's pause-expiry service failed the run meanwhile.
        client.set_flow_run_state(run_id, Failed(message="The flow was paused and never resumed."), force=True)
        return real(client, state, run_id, leaving)

    return expired_while_away


@pytest.mark.parametrize("on_timeout,answered,action", [
    ("hold", False, "hold"), ("rollback", False, "reject"), ("rollback", True, "approve"),
], ids=["hold", "rollback", "an answer at the deadline"])
def test_a_pause_made_in_an_outage_that_outlasted_its_timeout_takes_the_timeout_policy(
        monkeypatch, caplog, on_timeout, answered, action):
    """The pause lands as the Prefect API goes away (its reply lost), and the API comes back after
    the pause's timeout, the server having failed the run for the pause nobody resumed. The run
    failed (the Prefect API "refused to pause" it, or "left it FAILED"), and its failure hook rolled
    the rollout back even under approvals.on_timeout "hold": it now takes the timeout policy, as a
    pause that timed out, an answer that landed at the deadline winning."""
    import logging

    expired_while_away = expired_in_an_outage(
        '{"action": "approve", "approver": "dana", "comment": "late"}' if answered else None)

    @flow(name="approval-expired-in-an-outage")
    def pauses_once_unanswered() -> str:
        approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout=on_timeout), poll_interval=0.05)
        return approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary").action

    monkeypatch.setattr(flows.approvals, "propose_state", expired_while_away)
    with caplog.at_level(logging.INFO):
        state = pauses_once_unanswered(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == action
    assert "the approval pause timed out during the Prefect outage" in caplog.text, caplog.text
    assert ("nobody answered within 2 min (wall clock)" in caplog.text) is not answered, caplog.text


@pytest.mark.parametrize("status, headers", [
    (503, {"Retry-After": "30", "Prefect-Maintenance": "true"}),
    (429, {"Retry-After": "10"}),
], ids=["maintenance", "rate-limited"])
def test_a_paused_runs_read_given_up_after_a_minute_is_tried_again_through_five_minutes_of_it(monkeypatch, caplog,
                                                                                             status, headers):
    """One read of the paused run's client gives up after 60 s of retries (``WHOLE_REQUEST_MOST_SECONDS``):
    the pause's poll must take that for the API being away and ask again, as in an outage, through
    a five-minute maintenance or rate limit; failing the run rolled its rollout back. A 429 (the
    API, or a proxy in front of it, saying to come back later) failed it after that minute."""
    import logging

    import prefect.client.base

    from flows.approvals import _bounded_retry_after, _request_sent

    now = {"s": 0.0}

    def advance(seconds: float) -> None:
        now["s"] += seconds

    def answering(request: httpx.Request) -> httpx.Response:
        if now["s"] < 300:
            return httpx.Response(status, headers=headers)
        return httpx.Response(200, json={"state": "Paused"})

    monkeypatch.setattr(prefect.client.base.time, "sleep", advance)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now["s"])
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(answering), base_url="http://prefect.invalid/api",
        event_hooks={"request": [_request_sent], "response": [_bounded_retry_after]})

    @flow(name="a-five-minute-maintenance")
    def polls_through_it() -> dict:
        return flows.approvals._through_outages(
            lambda: client.get("/flow_runs/1").json(), give_up_at=3600.0, poll_interval=5,
            clock=lambda: now["s"], sleep=advance)

    with caplog.at_level(logging.INFO):
        assert polls_through_it() == {"state": "Paused"}
    said = [r.getMessage() for r in caplog.records if "Prefect API" in r.getMessage()]
    assert any(f"the Prefect API answered {status}" in m and "gave up" in m for m in said), said
    # Noticed once the first read gave up, within its minute (Prefect's client jitters its waits).
    assert said[-1] in ("the Prefect API answers again after 4 min", "the Prefect API answers again after 5 min"), said


@pytest.mark.parametrize("part", ["form", "answer"])
def test_the_forms_parts_and_its_answer_are_given_up_after_a_minute_as_every_other_request_of_the_pause(
        monkeypatch, part):
    """The approval form's parts (stored as the run pauses) and the answer (read once it is resumed)
    went through Prefect's ``RunInput.save`` and ``load``, which open a client of their own: an API
    answering 503 held the run in one of them for Prefect's five retries of up to 30 s each (minutes,
    silent), where every other request of the pause gives up after 60 s and is tried again through
    the outage, saying so. They now go through the pause's own client, bounded alike."""
    import prefect.client.base
    from prefect.input import keyset_from_paused_state
    from prefect.settings import PREFECT_CLIENT_CSRF_SUPPORT_ENABLED, temporary_settings
    from prefect.states import Paused

    from flows.approvals import (WHOLE_REQUEST_MOST_SECONDS, ApprovalInput, _bounded_retry_after, _request_sent,
                                 _save_form, _stored_answer)

    now = {"s": 0.0}
    asked: list[str] = []

    def advance(seconds: float) -> None:
        now["s"] += seconds

    def unavailable(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return httpx.Response(503, headers={"Retry-After": "30"})

    monkeypatch.setattr(prefect.client.base.time, "sleep", advance)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now["s"])
    # The hooks ``bounded_client`` builds a paused run's client with, on an API answering 503 to all.
    with temporary_settings({PREFECT_CLIENT_CSRF_SUPPORT_ENABLED: False}):
        client = SyncPrefectClient("http://prefect.invalid/api", httpx_settings={
            "transport": httpx.MockTransport(unavailable),
            "event_hooks": {"request": [_request_sent], "response": [_bounded_retry_after]}})
    form = ApprovalInput.with_initial_data(description="## rollway: approval pause", action="approve")
    paused = Paused(timeout_seconds=60, pause_key="approval-1")
    paused.state_details.run_input_keyset = keyset_from_paused_state(paused)
    run_id = uuid4()
    with client, pytest.raises(httpx.HTTPStatusError) as gave_up:
        if part == "form":
            _save_form(client, run_id, form, paused.state_details.run_input_keyset)
        else:
            _stored_answer(client, form, paused, run_id)
    assert asked and all(f"/flow_runs/{run_id}/input" in path for path in asked), asked
    assert now["s"] <= WHOLE_REQUEST_MOST_SECONDS, now
    assert "the Prefect API answered 503" in str(gave_up.value) and "gave up" in str(gave_up.value), gave_up.value


def away_three_minutes_once_paused(monkeypatch) -> None:
    """The Prefect API goes away once the run is paused, for three reads of its state, each a minute
    of the approver's monotonic clock: past the pause's timeout (2 s or 2 min), and back."""
    from types import SimpleNamespace

    from prefect.client.schemas.objects import FlowRun

    later = [0.0]
    monkeypatch.setattr(flows.approvals, "time", SimpleNamespace(
        monotonic=lambda: time.monotonic() + later[0], sleep=time.sleep, time=time.time))
    real_read = SyncPrefectClient.read_flow_run
    outage = {"reads": 0}

    def away_past_the_deadline(self, flow_run_id) -> FlowRun:
        if outage["reads"] or (run := real_read(self, flow_run_id)).state.is_paused():
            if outage["reads"] < 3:
                outage["reads"] += 1
                later[0] += 60.0
                raise httpx.ConnectError("All connection attempts failed")
            return real_read(self, flow_run_id)
        return run

    monkeypatch.setattr(SyncPrefectClient, "read_flow_run", away_past_the_deadline)


def test_a_pause_whose_timeout_came_during_an_outage_says_it_acts_on_it_late(monkeypatch, caplog):
    """The Prefect API goes away while the run waits, and comes back past the pause's timeout: the
    run acts on the timeout only then (the server is the one to tell an answer given meanwhile).
    Its log said "nobody answered within 2 min" minutes after the deadline the form gave, and
    nothing of why the rollback (or the hold) came late."""
    import logging

    away_three_minutes_once_paused(monkeypatch)

    @flow(name="approval-timeout-in-an-outage")
    def pauses_once_unanswered() -> str:
        approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="hold"), poll_interval=0.05)
        return approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary").action

    with caplog.at_level(logging.INFO):
        assert pauses_once_unanswered() == "hold"
    said = " ".join(caplog.text.split())
    assert ("while the Prefect API could not be reached: the run acts on it only now that the API answers, 1 min "
            "late") in said, said


def test_a_timeout_acted_on_late_after_an_outage_says_so_in_the_ledger_and_the_rollback_page(monkeypatch, caplog):
    """The Prefect API is away as a 2-s pause falls due and comes back three minutes later: the run
    rolls back only then. Its log said the timeout was acted on late, but the rollback's reason in
    the ledger and the page on-call got read "no answer within 2 s", as a timeout acted on at once."""
    env = ledger_env()
    away_three_minutes_once_paused(monkeypatch)
    approver = prefect_approver(Approvals(timeout_seconds=2, on_timeout="rollback"), poll_interval=0.05)
    rolled_back_through_it(env, approver, 2, caplog)
    late = re.compile(r"no answer within 2 s; acted on 3 min late: the Prefect API could not be reached when it "
                      r"fell due at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(wall clock\)")
    record = env.ledger.get(env.targets.canary_service)
    (timeout,) = [t for t in record.history if t.kind == "timeout"]
    assert late.search(timeout.comment or ""), timeout.comment
    (rollback,) = [t for t in record.history if t.kind == "rollback"]
    assert late.search(rollback.comment or ""), rollback.comment
    (page,) = [body for subject, body in env.notifier.messages if subject.startswith("Rollback: ")]
    assert late.search(" ".join(page.split())), page
