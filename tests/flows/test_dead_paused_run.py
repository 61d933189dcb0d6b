"""`rollway promote` / `hold` / `abort` at a run that is Paused but whose process died.

Prefect keeps such a run Paused until its pause times out (an hour by default, up to 30 days),
and a resume then makes it Running with nothing to run it. promote said "approved ... resumed"
while nothing went on, ever, and the rollout could not be taken over by a new run meanwhile
(its owner's run had not ended). A paused run now says every 30 s that it still waits; the
commands refuse to answer one silent for too long, mark it Crashed, and say what to do.
"""

from __future__ import annotations

import re
import time
from types import SimpleNamespace

import pytest

from prefect.client.orchestration import get_client

from rollway.approvals import waiting_prefix
from rollway.cli import ops
from rollway.targets import Targets
from tests.flows.test_answer_not_taken import paused_with_its_form
from tests.flows.test_promote_race import commands_see_a_rollout_owned_by


def ten_minutes_later(monkeypatch) -> None:
    """The commands run ten minutes after the run last said it waited: as if its process had
    died then (the run itself is alive in this test's thread, and stops at the Crashed state)."""
    shifted = SimpleNamespace(time=lambda: time.time() + 600, monotonic=time.monotonic, sleep=lambda s: None)
    monkeypatch.setattr(ops, "time", shifted)


def test_a_paused_run_says_it_still_waits():
    # Waits for the run's first saying (right after its form is stored), or times out naming it.
    thread, _outcome, run = paused_with_its_form(timeout=120)
    from flows.approvals import silent_since

    with get_client(sync_client=True) as client:
        said = client.filter_flow_run_input(run.id, waiting_prefix(run.state.state_details.pause_key), 20, set())
        assert len(said) == 1, said
        assert silent_since(client, run, time.time()) is None
        client.resume_flow_run(run.id, run_input={"action": "reject", "approver": "t", "comment": ""})
    thread.join(90)


def test_promote_at_a_dead_paused_run_sends_nothing_marks_it_crashed_and_says_what_to_do(monkeypatch, capsys):
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    ten_minutes_later(monkeypatch)
    code = ops.promote(approver="alice", comment="looks good", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    said = " ".join(err.split())
    assert code == 1 and "approved by alice" not in out, out
    assert outcome == [], outcome  # nothing answered it
    assert type(thread.raised).__name__ == "MarkedCrashed", thread.raised  # the run stopped, rolling nothing back
    assert f"flow run {run.name} ({run.id}) is paused, but has stopped saying it waits for its answer" in said, err
    assert "Your answer (approve) was not sent" in said, err
    # The run's silence has one other cause than a dead process, and the person is told it.
    assert ("or, if it lives, the Prefect API (or a proxy in front of it) has refused its every write since (a rate "
            "limit answering its requests alone)") in said, err
    assert "a live one stops once it reads its Crashed mark, acting on no answer" in said, err
    assert "resumable from the ledger: start `progressive_rollout` again" in said, err
    assert "`rollway abort` rolls it back" in said, err
    # Kept in the ledger too: the report read later showed nobody had tried to approve.
    (refused,) = ops.connect(None, None).ledger.get(Targets().canary_service).refused_answers
    assert (refused.actor, refused.action, refused.comment) == ("alice", "approve", "looks good"), refused
    assert refused.reason.startswith(f"given with `rollway promote`, not taken: flow run {run.name} ({run.id}) is "
                                     "paused, but has stopped saying it waits"), refused.reason
    with get_client(sync_client=True) as client:
        (crashed,) = [s for s in client.read_flow_run_states(run.id) if s.is_crashed()]
        # No answer was stored: the run was never resumed.
        assert client.filter_flow_run_input(run.id, run.state.state_details.run_input_keyset["response"], 5,
                                            set()) == []
    assert "alice answered approve (looks good), which was not sent to it" in crashed.message, crashed.message
    # What is known, not more: the run may live with its every write refused, as the person is told above.
    assert crashed.message.startswith(
        "it stopped saying it waits for an answer: its process died, or, if it lives, the Prefect API (or a proxy in "
        "front of it) has refused its every write since;"), crashed.message


def test_abort_at_a_dead_paused_canary_run_says_nothing_was_rolled_back_and_how_to(monkeypatch, capsys):
    thread, _outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    service = ops.connect()
    record = service.ledger.get(service.name)
    # A run that does not own the ledger's rollout (a `canary` flow run keeps no ledger).
    monkeypatch.setattr(ops, "owner_run_id", lambda record: None)
    ten_minutes_later(monkeypatch)
    code = ops.abort(approver="bob", reason="error budget", flow_run=run.id, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    said = " ".join(err.split())
    assert code == 1 and "rejected by bob" not in out, out
    assert "has stopped saying it waits for its answer" in said and "nothing was rolled back by this command" in said, err
    assert "run the `rollback` flow to move the traffic back" in said, err
    assert service.ledger.get(service.name) == record  # the ledger's rollout is not this run's: untouched


def test_a_live_run_marked_crashed_while_paused_stops_and_its_hooks_leave_the_rollout_alone(monkeypatch, capsys):
    """Taken for dead (its sayings late past the margin), a live run finds itself Crashed: it
    stops, and its failure hook must not roll back a rollout the person was told stays put."""
    from prefect.states import Failed

    from flows.approvals import MarkedCrashed
    from flows.hooks import leave_alone

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    ten_minutes_later(monkeypatch)
    assert ops.hold(approver="carol", comment="", flow_run=None, targets_block=None, credentials_block=None) == 1
    thread.join(90)
    assert outcome == []
    with get_client(sync_client=True) as client:
        final = client.read_flow_run(run.id).state
    assert final.is_failed() and "MarkedCrashed" in final.message, final
    stopped = MarkedCrashed("the run left its approval pause for Crashed")
    assert "marked Crashed at its approval pause" in (leave_alone(Failed(data=stopped), {}) or "")


def test_status_says_a_paused_run_has_no_process(monkeypatch, capsys):
    thread, _outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    assert ops.status(targets_block=None, credentials_block=None) == 0
    alive = " ".join(capsys.readouterr().out.split())
    assert f"flow run {run.name} ({run.id}) is paused" in alive and "stopped saying it waits" not in alive, alive
    ten_minutes_later(monkeypatch)
    assert ops.status(targets_block=None, credentials_block=None) == 0
    dead = " ".join(capsys.readouterr().out.split())
    assert "is paused, but has stopped saying it waits for its answer" in dead, dead
    assert "answering it marks it Crashed and sends nothing" in dead, dead
    with get_client(sync_client=True) as client:
        client.resume_flow_run(run.id, run_input={"action": "reject", "approver": "t", "comment": ""})
    thread.join(90)


def test_abort_at_a_dead_paused_run_that_owns_the_rollout_rolls_back_itself(monkeypatch, capsys):
    """Its reject sent, nothing would have rolled back: abort said "resumed to roll back" and the
    canary kept its traffic. The run is marked Crashed, and the abort rolls back itself."""
    import flows.rollback
    from rollway.model import Weights
    from rollway.phases import RolloutPhase
    from tests.flows.fake_env import fake_environment

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    service = ops.connect()
    env = fake_environment()
    env.ledger, env.router = service.ledger, service.router
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    ten_minutes_later(monkeypatch)
    code = ops.abort(approver="bob", reason="error budget", flow_run=None, wait_seconds=0, targets_block=None,
                     credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    assert outcome == []
    assert code == 0, err
    assert "has stopped saying it waits for its answer" in " ".join(err.split()) and "rolled back" in out, (out, err)
    assert service.router.get_weights() == Weights(stable=100, canary=0)
    record = service.ledger.get(service.name)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.history[-1].actor == "bob", record.history


def test_a_run_silent_at_first_look_that_says_it_waits_a_period_later_is_answered(monkeypatch, capsys):
    """A live run cannot say it waits while the Prefect API is away: a person answering just as a
    long server restart ended found it silent, and it was taken for dead. It is looked at once
    more a period later, by when a live run has said it waits again.

    Its Prefect client retries a read the API cannot answer itself, with backoffs doubling to 32 s
    (and up to a fifth of jitter) before its outage poll sees the read fail: the API back just as
    that last backoff began, the run says it waits again some 38 s later. Looked at again after its
    period of 30 s and 5 s, promote took the live run for dead and marked it Crashed."""
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    offset = [600.0]
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        if seconds >= 32 * 1.2:  # its client's last backoff over: the run has said it waits again
            offset[0] = 0.0

    monkeypatch.setattr(ops, "time", SimpleNamespace(time=lambda: time.time() + offset[0], monotonic=time.monotonic,
                                                     sleep=sleep))
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    assert not any(s.is_crashed() for s in states), (err, [s.name for s in states])
    assert code == 0 and outcome == ["approve by alice"], (out, err)
    # Its period of 30 s, or its client's longest backoff (32 s and a fifth) when longer, and 5 s.
    assert waited and waited[0] == 43.4, waited
    # 600 s and the real seconds since the run last said it waits: up to its period of 30 s, and on
    # a loaded machine more (its saying late, promote slow to start), which 6[0-2]\d s failed at.
    assert re.search(r"has not said for 6\d\d s that it still waits for an answer: looking again in 43 s",
                     " ".join(err.split())), err


def test_a_paused_owner_whose_process_died_has_ended_for_the_run_that_would_take_its_rollout_over(monkeypatch, caplog):
    """Without anyone running promote, the weekly schedule's run (or one started by hand) found the
    rollout's owner Paused and left it alone, or was refused, until that pause timed out: up to 30
    days. A paused owner silent too long, and still a period later, has ended: it is marked Crashed
    and the rollout taken over."""
    import flows.env
    from flows.env import owner_finished

    thread, outcome, run = paused_with_its_form(timeout=120)
    owner = f"flow-run/{run.id}"
    assert owner_finished(owner) is False  # alive: it says it waits
    waited: list[float] = []
    monkeypatch.setattr(flows.env, "time", SimpleNamespace(time=lambda: time.time() + 600, sleep=waited.append))
    assert owner_finished(owner) is True
    thread.join(90)
    # Not a bare period and 5 s: the run's client backs off up to 2**5 s and a fifth before it says
    # it waits again after an outage, and a live owner was marked Crashed (`look_again_after`).
    assert outcome == [] and waited == [pytest.approx(max(30.0, 2.0 ** 5 * 1.2) + 5.0)], (outcome, waited)
    with get_client(sync_client=True) as client:
        (crashed,) = [s for s in client.read_flow_run_states(run.id) if s.is_crashed()]
    # What is known, not more: it stopped saying it waits; a live run whose every write is refused does too.
    assert re.fullmatch(r"it stopped saying it waits for an answer \(it last said it was waiting 6\d\d s ago\): its "
                        r"process died, or, if it lives, the Prefect API \(or a proxy in front of it\) has refused its "
                        r"every write since", crashed.message), crashed.message
    said = " ".join(caplog.text.split())
    assert "is paused, but it stopped saying it waits for an answer (it last said" in said, said
    assert "or, if it lives, the Prefect API (or a proxy in front of it) has refused its every write since" in said, said


def test_a_silent_run_that_leaves_its_pause_before_the_second_look_is_not_marked_crashed(monkeypatch, capsys):
    """A pause's watch rolled back during a Prefect outage of over 150 s: the run said nothing while
    the API was away, and leaves its pause (Running) as soon as it answers again. `rollway promote`
    run then found it silent, looked again a period later, and forced Crashed onto a live run that
    had just left the pause. A run no longer paused at the second look is alive: nothing is marked,
    and the answer is refused as for any run that left its pause."""
    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    ten_minutes_later(monkeypatch)
    left: list[float] = []

    def the_run_leaves_its_pause(seconds: float) -> None:
        if not left:  # the look again's wait: the run leaves its pause meanwhile (here, bob's hold)
            left.append(seconds)
            ops.resume(run.id, {"action": "hold", "approver": "bob", "comment": ""}, paused=run.state)
            thread.join(90)

    monkeypatch.setattr(ops.time, "sleep", the_run_leaves_its_pause)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert left, "promote did not look again"
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
    assert not any(s.is_crashed() for s in states), [s.name for s in states]
    assert outcome == ["hold by bob"], outcome
    assert code == 1 and "approved by alice" not in out, out
    assert "was answered first by bob: hold" in said and "this answer was not taken" in said, said
    assert "has stopped saying it waits for its answer" not in said, said


def test_promote_at_a_silent_paused_run_that_holds_its_rollback_s_claim_marks_nothing(monkeypatch, capsys):
    """A pause's watch rolls back while the Prefect API is away, and the API comes back before the
    rollback is done: the run, still Paused on the server, says nothing until it has rolled back.
    `rollway promote` took it for dead and forced Crashed onto a run moving the traffic back; the
    ledger showed its rollback under way, its claim renewed by that very run."""
    import time as real_time

    from rollway.ledger import begin_rollback

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    service = ops.connect()
    begin_rollback(service.ledger, service.name, actor="judge", reason="5xx: canary 5.0% vs stable 0.1%",
                   now=real_time.time(), holder=f"judge (flow run {run.name}, {run.id})", lease_seconds=3600,
                   wall=real_time.time())
    ten_minutes_later(monkeypatch)
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    with get_client(sync_client=True) as client:
        states = client.read_flow_run_states(run.id)
        still = client.read_flow_run(run.id).state
        client.resume_flow_run(run.id, run_input={"action": "hold", "approver": "t", "comment": ""})
    thread.join(90)
    assert code == 1 and "approved by alice" not in out, out
    assert not any(s.is_crashed() for s in states) and still.is_paused(), [s.name for s in states]
    assert "has stopped saying it waits for its answer" not in said, said
    assert f"flow run {run.name} ({run.id}) rolls the rollout back" in said and "was not sent" in said, said


def test_promote_whose_answer_lands_as_the_run_leaves_a_pause_it_rolled_back_in_does_not_say_approved(
        monkeypatch, capsys):
    """A pause's watch rolled the rollout back while the Prefect API was away; alice's approve lands
    as the API answers again, before the run leaves its pause. The run takes it and ends without a
    word in the ledger (the rollout is closed), Completed: promote said "approved by alice: ...
    resumed", of a rollout just rolled back."""
    import time as real_time

    from rollway.ledger import begin_rollback

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    service = ops.connect()
    begin_rollback(service.ledger, service.name, actor="judge", reason="5xx: canary 5.0% vs stable 0.1%",
                   now=real_time.time())
    code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                       credentials_block=None)
    out, err = capsys.readouterr()
    thread.join(90)
    said = " ".join(err.split())
    assert outcome == ["approve by alice"], outcome  # the run took it, and recorded nothing
    assert code == 1 and "approved by alice" not in out, out
    # The stand-in run ends with the rollback only begun: "already rolling back", as the ledger says.
    assert "did not take alice's promote" in said and "the rollout was already rolling back" in said and "5xx" in said, said


def test_a_command_looks_again_after_the_runs_own_backoff_not_its_own_profiles():
    """The run's worker retries its Prefect reads longer than the command's profile (here 2**8 s):
    `rollway promote` looked again after its own client's longest backoff (43 s), while the live
    run's client still waited for its last retry, and marked it Crashed. The run says how long its
    client may stay silent, and the command waits that long."""
    import json

    from flows.approvals import look_again_after, silent_since

    said = [SimpleNamespace(key=f"{waiting_prefix('approval-1')}0",
                            value=json.dumps({"at": 1000.0, "every": 30.0, "backoff": 2.0 ** 8 * 1.2}))]
    client = SimpleNamespace(filter_flow_run_input=lambda run_id, prefix, limit, exclude: said)
    run = SimpleNamespace(id="run-1", state=SimpleNamespace(state_details=SimpleNamespace(pause_key="approval-1")))
    silent = silent_since(client, run, 1000.0 + 600)
    assert silent is not None and silent[0] == 1000.0
    assert look_again_after(silent[1]) == pytest.approx(2.0 ** 8 * 1.2 + 5.0)
    # A run of an earlier rollway wrote no backoff: the command's own client stands for its.
    said[0].value = json.dumps({"at": 1000.0, "every": 30.0})
    assert look_again_after(silent_since(client, run, 1600.0)[1]) == pytest.approx(2.0 ** 5 * 1.2 + 5.0)


def test_a_command_whose_profile_retries_for_days_does_not_wait_that_long_to_look_again():
    """A profile with PREFECT_CLIENT_MAX_RETRIES=20 made `rollway promote` sleep 2**20 s (12 days)
    before its second look at a silent run, saying "looking again in 1258296 s"."""
    from prefect.settings import PREFECT_CLIENT_MAX_RETRIES, temporary_settings

    from flows.approvals import LOOK_AGAIN_MOST_SECONDS, look_again_after

    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 20}):
        assert look_again_after(30.0) == LOOK_AGAIN_MOST_SECONDS + 5.0 == 605.0


@pytest.mark.parametrize(("sent", "least", "most"), [("3600", 30, 36), ("Wed, 21 Oct 2099 07:28:00 GMT", 30, 36),
                                                    # A date with no zone: Prefect's client reads it as UTC.
                                                    ("Wed, 21 Oct 2099 07:28:00 -0000", 30, 36),
                                                    ("-5", 0, 0), ("12", 12, 14.4)])
def test_the_paused_runs_client_waits_at_most_30_s_of_a_retry_after(monkeypatch, sent, least, most):
    """A proxy in front of a restarting Prefect server answered 503 with Retry-After: 3600: the
    paused run's client slept an hour in one read, said nothing meanwhile (taken for dead, and
    marked Crashed, once the API was back), and its watch never looked at the canary."""
    import httpx
    import prefect.client.base

    from flows.approvals import RETRY_AFTER_MOST_SECONDS, _bounded_retry_after

    slept: list[float] = []
    monkeypatch.setattr(prefect.client.base.time, "sleep", slept.append)
    answers = iter([httpx.Response(503, headers={"Retry-After": sent}), httpx.Response(503, headers={"Retry-After": "2"}),
                    httpx.Response(200, json={})])
    # Prefect's own client, as the pause's is made (``prefect_approver``): the API away, then back.
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(lambda request: next(answers)), base_url="http://prefect.invalid/api",
        event_hooks={"response": [_bounded_retry_after]})
    assert client.get("/flow_runs/1").status_code == 200
    # Each wait what was asked, up to 30 s, and the client's jitter (up to a fifth) more.
    assert RETRY_AFTER_MOST_SECONDS == 30.0 and least <= slept[0] <= most and 2 <= slept[1] <= 2.4, slept


def behind_a_throttling_proxy(api_url: str, throttled=None, retry_after: str = "86400", lost=None):
    """A real HTTP server in front of the Prefect API at ``api_url`` that answers each request the
    first time it sees it with 429 and ``Retry-After: 86400`` (a rate limiter, or a proxy in front
    of a restarting server), and passes its retry on; returns the server (shut down by the caller)
    and its API address. ``throttled(method, path, body)``: which requests it answers 429 (with
    ``Retry-After: retry_after``) instead; ``lost(method, path, body)``: which it passes on and then
    hangs up on without a reply (a restart of the server, or a proxy, after the write)."""
    import threading
    from http.server import BaseHTTPRequestHandler

    from tests.local_http import QuietHTTPServer
    from urllib.parse import urlsplit

    import httpx

    upstream = urlsplit(api_url)
    seen: set[tuple[str, str, bytes]] = set()
    lock = threading.Lock()

    class Throttling(BaseHTTPRequestHandler):
        def relay(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                first = (self.command, self.path, body) not in seen
                seen.add((self.command, self.path, body))
            if first if throttled is None else throttled(self.command, self.path, body):
                self.send_response(429)
                self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            with httpx.Client(base_url=f"{upstream.scheme}://{upstream.netloc}") as client:
                answer = client.request(self.command, self.path, content=body, headers=headers)
            if lost is not None and lost(self.command, self.path, body):
                self.close_connection = True
                return
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "content-encoding", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = relay

        def log_message(self, *args) -> None:
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}{upstream.path}"


def test_promote_waits_at_most_30_s_of_a_day_long_retry_after_from_the_prefect_api(monkeypatch, capsys):
    """A Prefect API (or a proxy in front of it) answering `rollway promote` 429 with Retry-After: 86400
    kept the command silent for a day in one read: it looked hung, and the person answered in the UI
    or gave up. Its client waits at most 30 s of it (and its jitter), as the paused run's does."""
    import prefect.client.base
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.approvals import RETRY_AFTER_MOST_SECONDS

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    slept: list[float] = []
    # Prefect's client sleeps through its module's ``time``: recorded, never waited.
    monkeypatch.setattr(prefect.client.base, "time", SimpleNamespace(**{**vars(time), "sleep": slept.append}))
    server, proxied = behind_a_throttling_proxy(PREFECT_API_URL.value())
    try:
        with temporary_settings(updates={PREFECT_API_URL: proxied}):
            code = ops.promote(approver="alice", comment="", weight=None, flow_run=None, targets_block=None,
                               credentials_block=None)
    finally:
        server.shutdown()
    out, err = capsys.readouterr()
    thread.join(90)
    assert code == 0 and f"approved by alice: flow run {run.name}" in out, (out, err)
    assert outcome == ["approve by alice"], (outcome, thread.raised)
    assert slept, "the proxy's 429s were never retried"
    assert max(slept) <= RETRY_AFTER_MOST_SECONDS * 1.2, slept


def test_promote_whose_reply_was_lost_and_sent_again_says_approved_not_answered_first_by_itself(monkeypatch, capsys):
    """The server took `rollway promote`'s resume and the connection dropped before its reply (a restart,
    a proxy): Prefect's client sent the resume again, the run was no longer paused, and the command
    said the run "was answered first by alice: approve; ... this answer was not taken", of alice's
    own answer, and exited 1: she thought her approval lost."""
    import prefect.client.base
    from prefect.settings import PREFECT_API_URL, temporary_settings

    thread, outcome, run = paused_with_its_form(timeout=120)
    commands_see_a_rollout_owned_by(monkeypatch, run)
    # Prefect's client backs off before sending it again: recorded, never waited.
    monkeypatch.setattr(prefect.client.base, "time", SimpleNamespace(**{**vars(time), "sleep": lambda s: None}))
    resumes: list[str] = []

    def first_resume(method: str, path: str, body: bytes) -> bool:
        if method == "POST" and path.endswith(f"/flow_runs/{run.id}/resume"):
            resumes.append(path)
            return len(resumes) == 1
        return False

    server, proxied = behind_a_throttling_proxy(PREFECT_API_URL.value(), lambda *sent: False, lost=first_resume)
    try:
        with temporary_settings(updates={PREFECT_API_URL: proxied}):
            code = ops.promote(approver="alice", comment="looks good", weight=None, flow_run=None,
                               targets_block=None, credentials_block=None)
    finally:
        server.shutdown()
    out, err = capsys.readouterr()
    thread.join(90)
    assert len(resumes) == 2, resumes  # the reply to the first was lost, and it was sent again
    assert outcome == ["approve by alice"], (outcome, thread.raised)
    assert "answered first" not in err, err
    assert code == 0 and f"approved by alice: flow run {run.name}" in out, (out, err)


def test_the_commands_read_their_blocks_on_a_client_that_waits_at_most_30_s_of_a_retry_after(monkeypatch):
    """promote, hold and abort read the blocks they are named (--targets-block, --credentials-block)
    before the paused run: on Prefect's own client, which slept a day's Retry-After in that read,
    whatever the commands' own client bounded after it."""
    import prefect.client.base
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.approvals import RETRY_AFTER_MOST_SECONDS

    slept: list[float] = []
    monkeypatch.setattr(prefect.client.base, "time", SimpleNamespace(**{**vars(time), "sleep": slept.append}))
    server, proxied = behind_a_throttling_proxy(PREFECT_API_URL.value())
    try:
        with temporary_settings(updates={PREFECT_API_URL: proxied}), pytest.raises(ops.OpsError) as refused:
            ops.load_account("no-such-targets", None)
    finally:
        server.shutdown()
    assert "no-such-targets" in str(refused.value), refused.value
    assert slept, "the proxy's 429s were never retried"
    assert max(slept) <= RETRY_AFTER_MOST_SECONDS * 1.2, slept


@pytest.mark.parametrize("maintenance", [True, False], ids=["maintenance", "503"])
def test_one_read_of_the_pauses_client_gives_up_after_a_minute_of_retries_saying_so(monkeypatch, maintenance):
    """The 30 s bound was per retry: Prefect's client retries a 503 five times (about three minutes
    silent, a person answering took the command for hung), and one marked ``Prefect-Maintenance``
    without limit. The whole read is bounded, and its error says what the API answered and when it gave up."""
    import httpx
    import prefect.client.base

    import flows.approvals
    from flows.approvals import WHOLE_REQUEST_MOST_SECONDS, _bounded_retry_after, _request_sent

    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    monkeypatch.setattr(prefect.client.base.time, "sleep", sleep)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    headers = {"Retry-After": "30", **({"Prefect-Maintenance": "true"} if maintenance else {})}
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(503, headers=headers)),
        base_url="http://prefect.invalid/api",
        event_hooks={"request": [_request_sent], "response": [_bounded_retry_after]})
    with pytest.raises(httpx.HTTPStatusError) as caught:
        client.get("/flow_runs/1")
    assert caught.value.response.status_code == 503
    assert sum(slept) <= WHOLE_REQUEST_MOST_SECONDS == 60.0, slept
    said = str(caught.value)
    assert said.startswith(f"the Prefect API answered 503{' (down for maintenance)' if maintenance else ''} to "
                           "GET http://prefect.invalid/api/flow_runs/1 for "), said
    assert said.endswith("of tries; gave up, as one request is given at most 60 s"), said


def test_one_read_the_prefect_api_never_answers_gives_up_after_a_minute_saying_so(monkeypatch):
    """A Prefect API that takes the connection and never answers (a proxy whose upstream hangs):
    Prefect's client waits its 60-s timeout, then retries a ReadTimeout five times with backoffs
    of up to 32 s, about seven minutes in which `rollway promote` said nothing. The read's tries
    share the minute, and the error says so."""
    import httpx
    import prefect.client.base

    import flows.approvals
    from flows.approvals import WHOLE_REQUEST_MOST_SECONDS, _bounded_retry_after, _request_sent

    now = [1000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def hung(request: httpx.Request) -> httpx.Response:
        now[0] += request.extensions["timeout"]["read"]  # waited that long for an answer
        raise httpx.ReadTimeout("timed out", request=request)

    monkeypatch.setattr(prefect.client.base.time, "sleep", sleep)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(hung), base_url="http://prefect.invalid/api", timeout=60.0,
        event_hooks={"request": [_request_sent], "response": [_bounded_retry_after]})
    with pytest.raises(httpx.TransportError) as caught:
        client.get("/flow_runs/1")
    # The minute, and the one backoff Prefect's client sleeps before the try that is not sent.
    assert now[0] - 1000.0 <= WHOLE_REQUEST_MOST_SECONDS + 2 * 1.5, now[0] - 1000.0
    said = str(caught.value)
    assert said.startswith("the Prefect API did not answer GET http://prefect.invalid/api/flow_runs/1 in "), said
    assert said.endswith(" s of tries; gave up, as one request is given at most 60 s"), said


def test_a_try_begun_late_in_the_minute_is_given_a_few_seconds_to_be_answered(monkeypatch):
    """Each try's timeouts are cut to what is left of the request's minute: a retry Prefect's client
    sent 57 s into it had 3 s, and an API back from its maintenance that answered in 4 s timed out,
    the read given up ("did not answer") on an API answering it. A try begun within the minute is
    given at least ``TRY_LEAST_SECONDS``."""
    import httpx
    import prefect.client.base
    from prefect.settings import PREFECT_CLIENT_RETRY_JITTER_FACTOR, temporary_settings

    import flows.approvals
    from flows.approvals import TRY_LEAST_SECONDS, _bounded_retry_after, _request_sent

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def back_at_50_s_and_slow(request: httpx.Request) -> httpx.Response:
        if now[0] < 50.0:
            return httpx.Response(503, headers={"Retry-After": "19"})
        if request.extensions["timeout"]["read"] < 4.0:
            now[0] += request.extensions["timeout"]["read"]
            raise httpx.ReadTimeout("timed out", request=request)
        now[0] += 4.0
        return httpx.Response(200, json={"state": "Paused"})

    monkeypatch.setattr(prefect.client.base.time, "sleep", sleep)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(back_at_50_s_and_slow), base_url="http://prefect.invalid/api", timeout=60.0,
        event_hooks={"request": [_request_sent], "response": [_bounded_retry_after]})
    assert TRY_LEAST_SECONDS >= 4.0
    with temporary_settings({PREFECT_CLIENT_RETRY_JITTER_FACTOR: 0}):
        answered = client.get("/flow_runs/1")  # tries at 0, 19, 38 s (503s), then 57 s
    assert answered.json() == {"state": "Paused"}
    assert now[0] == 61.0, now[0]


def test_a_status_the_prefect_profile_has_retried_is_named_when_the_minute_runs_out(monkeypatch):
    """A profile's PREFECT_CLIENT_RETRY_EXTRA_CODES are retried by Prefect's client as a 503 is: the
    read given up after its minute said the API "did not answer", of an API that answered 500 at
    every try."""
    import httpx
    import prefect.client.base
    from prefect.settings import PREFECT_CLIENT_RETRY_EXTRA_CODES, temporary_settings

    import flows.approvals
    from flows.approvals import _bounded_retry_after, _request_sent

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(prefect.client.base.time, "sleep", sleep)
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    client = prefect.client.base.PrefectHttpxSyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(500, headers={"Retry-After": "20"})),
        base_url="http://prefect.invalid/api", event_hooks={"request": [_request_sent], "response": [_bounded_retry_after]})
    with temporary_settings({PREFECT_CLIENT_RETRY_EXTRA_CODES: {500}}), pytest.raises(httpx.HTTPError) as caught:
        client.get("/flow_runs/1")
    said = str(caught.value)
    assert said.startswith("the Prefect API answered 500 to GET http://prefect.invalid/api/flow_runs/1 for "), said
    assert now[0] <= 60.0 + 20 * 1.2, now[0]
