"""A paused run's "still waiting" note, rate-limited by the Prefect API (or a proxy in front of it).

The note is written on the pause's own client, between two reads of the run's state: a 429 to
it was retried for up to a minute (Retry-After, bounded to 30 s, twice), and an approval given
in the UI meanwhile waited that long to be acted on. The note is tried once per poll: one the
API refuses is tried again at the next poll, and the poll reads the run's state on time.
"""

from __future__ import annotations

import json
import re
import threading
import time
from types import SimpleNamespace
from uuid import uuid4

import httpx
import prefect.client.base
from prefect import flow
from prefect.settings import PREFECT_API_URL, temporary_settings

import flows.approvals
from flows.approvals import prefect_approver
from rollway.decide import Pause
from rollway.spec import Approvals
from tests.flows.test_dead_paused_run import behind_a_throttling_proxy

QUESTION = "approval needed before 25% (note throttled)"
_NOTE = re.compile(r"-waiting-\d+$")


@flow(name="approval-note-throttled")
def waits_behind(api_url: str, timeout: float) -> str:
    # The pause's client reads the API address as it is made: the run's approver goes through the proxy.
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        approver = prefect_approver(Approvals(timeout_seconds=timeout, on_timeout="rollback"), poll_interval=1)
        answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    return f"{answer.action} by {answer.approver}"


def approve_straight_on_the_api(api: str, run_id: str) -> None:
    """Ann approves the paused run ``run_id`` as the UI does, on the API ``api`` itself (not through
    the test's proxy). The test server's SQLite answers 5xx ("database is locked") now and then on a
    loaded machine, where the UI would show an error and the person click again: so do we, a few
    times, a second apart."""
    for _ in range(5):
        sent = httpx.post(f"{api}/flow_runs/{run_id}/resume", timeout=30,
                          json={"run_input": {"action": "approve", "approver": "ann", "comment": ""}})
        if sent.status_code < 500:
            break
        time.sleep(1)
    assert sent.json()["status"] == "ACCEPT", sent.text


def throttling_notes(api_url: str, on_first_note):
    """A real HTTP server in front of the Prefect API at ``api_url`` that answers every "still waiting"
    note (``-waiting-<n>``) 429 with ``Retry-After: 30``, and passes everything else on; it calls
    ``on_first_note(run_id)`` before answering the first note. Returns the server, its API address
    and the notes it refused."""
    notes: list[str] = []
    lock = threading.Lock()

    def a_note(method: str, path: str, body: bytes) -> bool:
        found = re.search(r"/flow_runs/([0-9a-f-]+)/input$", path) if method == "POST" else None
        if found is None or not _NOTE.search(json.loads(body).get("key", "")):
            return False
        with lock:
            notes.append(path)
            first = len(notes) == 1
        if first:
            on_first_note(found.group(1))
        return True

    server, proxied = behind_a_throttling_proxy(api_url, a_note, retry_after="30")
    return server, proxied, notes


def test_an_approval_given_while_the_waiting_note_is_rate_limited_is_acted_on_at_the_next_poll(monkeypatch):
    # The clock Prefect's client backs off on, and the pause's client times its tries on: advanced by
    # each backoff, never waited.
    now = [0.0]
    answered_at: list[float] = []

    def backoff(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(prefect.client.base, "time", SimpleNamespace(**{**vars(time), "sleep": backoff}))
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    api = PREFECT_API_URL.value()

    def approve_in_the_ui(run_id: str) -> None:
        # A person approves in the UI as the run's first note is refused (straight to the API).
        approve_straight_on_the_api(api, run_id)
        answered_at.append(now[0])

    server, proxied, notes = throttling_notes(api, approve_in_the_ui)
    outcome: list[str] = []
    name = f"note-throttled-{uuid4().hex}"

    def run() -> None:
        try:
            outcome.append(waits_behind.with_options(flow_run_name=name)(proxied, 120))
        except Exception as err:  # noqa: BLE001 - asserted below
            outcome.append(repr(err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        thread.join(90)
    finally:
        server.shutdown()
    assert outcome == ["approve by ann"], outcome
    assert notes and answered_at, notes
    # Acted on at the next read of the run's state: no backoff of the note's retries in between
    # (a minute of them before).
    assert now[0] - answered_at[0] < 5.0, now[0] - answered_at[0]


@flow(name="approval-note-delete-throttled")
def waits_quickly_behind(api_url: str) -> str:
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=0.2)
        answer = approver(Pause(reason=QUESTION, cause="approval", stage_index=1), "summary")
    return f"{answer.action} by {answer.approver}"


def notes_held_once_approved(server, proxied: str, name: str, enough: threading.Event,
                             notes: list[str]) -> list[str]:
    """Run ``waits_quickly_behind`` through the proxy ``proxied`` (``server``, shut down here) until
    ``enough`` of its notes (``notes``: their paths) went through, approve it straight on the API,
    and return the "still waiting" notes left on the run once it took the answer."""
    from prefect.client.orchestration import get_client

    api = PREFECT_API_URL.value()
    outcome: list[str] = []

    def run() -> None:
        try:
            outcome.append(waits_quickly_behind.with_options(flow_run_name=name)(proxied))
        except Exception as err:  # noqa: BLE001 - asserted below
            outcome.append(repr(err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert enough.wait(90), notes
        run_id = re.search(r"/flow_runs/([0-9a-f-]+)/input$", notes[0]).group(1)
        approve_straight_on_the_api(api, run_id)
        thread.join(90)
    finally:
        server.shutdown()
    assert outcome == ["approve by ann"], outcome
    with get_client(sync_client=True) as client:
        return [said.key for said in client.filter_flow_run_input(run_id, "", 100, set()) if _NOTE.search(said.key)]


def test_a_note_whose_delete_is_rate_limited_is_deleted_at_a_later_poll_not_left_to_pile_up(monkeypatch):
    """Each note deletes the one before; tried once, a delete the API refused (a rate limiter letting the
    note through and refusing the request right after it) left that note behind for good. They piled up
    over a long pause, and past the 100 the commands read of them (the oldest first) `rollway promote`
    found a live run silent, marked it Crashed and did not send the answer. Refused, it is tried again."""
    monkeypatch.setattr(flows.approvals, "WAITING_EVERY_SECONDS", 0.0)  # a note at every poll
    api = PREFECT_API_URL.value()
    refused: set[str] = set()
    notes: list[str] = []
    enough = threading.Event()
    lock = threading.Lock()

    def first_delete_of_each_note(method: str, path: str, body: bytes) -> bool:
        with lock:
            if method == "POST" and re.search(r"/flow_runs/[0-9a-f-]+/input$", path):
                if _NOTE.search(json.loads(body).get("key", "")):
                    notes.append(path)
                    if len(notes) >= 8:
                        enough.set()
                return False
            if method != "DELETE" or not _NOTE.search(path) or path in refused:
                return False
            refused.add(path)
            return True

    server, proxied = behind_a_throttling_proxy(api, first_delete_of_each_note, retry_after="30")
    held = notes_held_once_approved(server, proxied, f"note-delete-throttled-{uuid4().hex}", enough, notes)
    assert len(notes) >= 8 and len(refused) >= 4, (notes, refused)
    # Its latest note, and at most the one before it (its delete refused at the last poll): not one per refusal.
    assert len(held) <= 2, held



def test_a_rate_limited_heard_note_says_in_the_runs_log_why_the_answer_waits(monkeypatch, caplog):
    """After an answer the run notes on itself that it read it, and that note keeps its minute of retries
    (lost, `rollway status` took the answer for one given to a dead run). A 429 to it held the answer
    for up to a minute with nothing in the run's log: the person who approved saw the run do nothing."""
    import logging

    now = [0.0]

    def backoff(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(prefect.client.base, "time", SimpleNamespace(**{**vars(time), "sleep": backoff}))
    monkeypatch.setattr(flows.approvals, "_request_clock", lambda: now[0])
    api = PREFECT_API_URL.value()
    approved: list[str] = []
    heard: list[str] = []

    def approve_then_refuse_the_first_heard_note(method: str, path: str, body: bytes) -> bool:
        found = re.search(r"/flow_runs/([0-9a-f-]+)/input$", path) if method == "POST" else None
        key = json.loads(body).get("key", "") if found is not None else ""
        if _NOTE.search(key) and not approved:
            # A person approves in the UI as the run says it waits (straight to the API).
            approved.append(found.group(1))
            approve_straight_on_the_api(api, found.group(1))
        if key.endswith("-waiting-heard"):
            heard.append(key)
            return len(heard) == 1
        return False

    server, proxied = behind_a_throttling_proxy(api, approve_then_refuse_the_first_heard_note, retry_after="30")
    outcome: list[str] = []
    try:
        with caplog.at_level(logging.INFO):
            outcome.append(waits_behind.with_options(flow_run_name=f"heard-throttled-{uuid4().hex}")(proxied, 120))
    finally:
        server.shutdown()
    assert outcome == ["approve by ann"], outcome
    assert len(heard) == 2, heard  # refused once, then taken
    said = " ".join(caplog.text.split())
    assert "the run tries it again for up to 1 min before acting on the answer" in said, said


def test_a_note_whose_reply_was_lost_is_deleted_at_a_later_poll_not_left_to_pile_up(monkeypatch):
    """A note the API stored whose reply was lost (the connection dropped after the write: a restart,
    a proxy) was taken for one not written, and never deleted: each such loss left one more behind
    for good, and past the 100 the commands read of them (the oldest first) `rollway promote` found
    a live run silent, marked it Crashed and did not send the answer. It is deleted as any other."""
    monkeypatch.setattr(flows.approvals, "WAITING_EVERY_SECONDS", 0.0)  # a note at every poll
    api = PREFECT_API_URL.value()
    notes: list[str] = []
    lost: list[str] = []
    enough = threading.Event()
    lock = threading.Lock()

    def every_other_notes_reply(method: str, path: str, body: bytes) -> bool:
        if method != "POST" or not re.search(r"/flow_runs/[0-9a-f-]+/input$", path):
            return False
        key = json.loads(body).get("key", "")
        if not _NOTE.search(key):
            return False
        with lock:
            notes.append(path)
            if len(notes) >= 10:
                enough.set()
            if len(notes) % 2:
                lost.append(key)
                return True
        return False

    server, proxied = behind_a_throttling_proxy(api, lambda *request: False, lost=every_other_notes_reply)
    held = notes_held_once_approved(server, proxied, f"note-reply-lost-{uuid4().hex}", enough, notes)
    assert len(lost) >= 5, lost
    # Its latest note, and at most the one before it (its reply lost at the last poll): not one per lost reply.
    assert len(held) <= 2, (held, lost)
