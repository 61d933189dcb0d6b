"""A Prefect API behind basic auth is reached as ``PREFECT_API_URL=https://<user>:<password>@host/api``,
and the Prefect client's errors quote the URL asked, password and all ("Server error '500 ...' for url
'https://rollway:s3cr3t@...'"). The run's refusals kept in its state, and its log lines, say such an
error with the password as ``***``.
"""

from __future__ import annotations

import logging
from uuid import uuid4

import httpx
import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient
from prefect.input import keyset_from_paused_state
from prefect.states import Paused

import flows.env
from flows.approvals import _given_at, _heard
from flows.canary import finalize_in_run
from flows.env import FINALIZING_TAG
from flows.progressive import progressive_rollout
from rollway.fakes import FakeLedger
from rollway.rollout_tags import ROLLOUT_TAG_PREFIX
from tests.flows.fake_env import fake_environment
from tests.flows.test_refusals import hooks_and_flows_see
from tests.flows.test_rollback_claim import SPEC

API_PASSWORD = "s3cr3t"
API_URL = f"https://rollway:{API_PASSWORD}@prefect.internal/api"


def refused_at(path: str, status: int = 500) -> httpx.HTTPStatusError:
    request = httpx.Request("PATCH", f"{API_URL}/{path}")
    return httpx.HTTPStatusError(f"Server error '{status} Internal Server Error' for url '{request.url}'",
                                 request=request, response=httpx.Response(status, request=request))


def tagging_refused(monkeypatch, prefix: str) -> None:
    """The Prefect API refuses the run's tag starting with ``prefix`` (its other updates go through)."""
    real = SyncPrefectClient.update_flow_run

    def update_flow_run(self, flow_run_id, *args, tags=None, **kwargs):
        if tags is not None and any(tag.startswith(prefix) for tag in tags):
            raise refused_at(f"flow_runs/{flow_run_id}")
        return real(self, flow_run_id, *args, tags=tags, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "update_flow_run", update_flow_run)


def said_without_the_password(text: str) -> None:
    assert API_PASSWORD not in text and "'https://rollway:***@prefect.internal/api/" in text, text


def test_a_canary_run_that_cannot_tag_itself_finalizing_says_why_without_the_password_of_the_api_url(monkeypatch,
                                                                                                     caplog):
    tagging_refused(monkeypatch, FINALIZING_TAG)
    env = fake_environment()

    @flow(name="canary-finalize-untagged")
    def finalizing():
        return finalize_in_run(env, SPEC, None, None, actor="bob", revision="webordinary-edit-task:2")

    state = finalizing(return_state=True)
    assert state.is_failed() and "could not tag itself as finalizing" in state.message, state.message
    said_without_the_password(state.message)
    with pytest.raises(Exception) as refused:
        state.result()
    said_without_the_password(str(refused.value))
    assert API_PASSWORD not in caplog.text  # the run's log prints the error with its cause


def test_a_rollout_run_the_api_will_not_tag_says_why_without_the_password_of_the_api_url(monkeypatch, caplog):
    env = fake_environment()
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    tagging_refused(monkeypatch, ROLLOUT_TAG_PREFIX)

    state = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False, return_state=True)
    assert state.is_failed() and "could not tag this run with rollout" in state.message, state.message
    said_without_the_password(state.message)
    assert API_PASSWORD not in caplog.text  # the run's log prints the error with its cause


def _pause() -> Paused:
    paused = Paused(timeout_seconds=60, pause_key="approval-1")
    paused.state_details.run_input_keyset = keyset_from_paused_state(paused)
    return paused


def _refusing(status: int) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: _csrf_off(request) or httpx.Response(status, request=request))


def _csrf_off(request: httpx.Request) -> httpx.Response | None:
    """The client's CSRF token read answered as a server without CSRF protection does (404): the
    requests the test refuses are the client's own."""
    return httpx.Response(404, request=request) if request.url.path.endswith("/csrf-token") else None


def _warned(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs" and r.levelno == logging.WARNING]


def test_a_heard_note_the_api_refuses_is_said_without_the_password_of_the_api_url(caplog):
    """A 500 is an API away: the run says it tries again, then that the note was not taken."""

    @flow(name="approvals-heard-refused")
    def heard() -> None:
        with SyncPrefectClient(API_URL, httpx_settings={"transport": _refusing(500)}) as client:
            _heard(client, uuid4(), _pause(), 5)

    with caplog.at_level(logging.INFO):
        heard()
    said = _warned(caplog)
    assert len(said) == 2 and "did not take the run's note" in said[0] and "could not say on the run" in said[1], said
    for line in said:
        said_without_the_password(line)


def test_when_an_answer_was_stored_unread_is_said_without_the_password_of_the_api_url(caplog):
    @flow(name="approvals-given-at-refused")
    def read_late() -> float | None:
        with SyncPrefectClient(API_URL, httpx_settings={"transport": _refusing(401)}) as client:
            return _given_at(client, uuid4(), _pause())

    with caplog.at_level(logging.INFO):
        assert read_late() is None
    (said,) = [m for m in _warned(caplog) if "could not read when the answer was stored" in m]
    said_without_the_password(said)


def test_waiting_notes_refused_are_said_without_the_password_of_the_api_url(caplog):
    """The first note is refused, the second taken and the delete of the first refused: both debug lines."""
    from flows.approvals import _Waiting

    notes = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/csrf-token"):
            return _csrf_off(request)
        if request.method == "POST":
            notes.append(request.url.path)
            return httpx.Response(500 if len(notes) == 1 else 201, request=request)
        return httpx.Response(500, request=request)

    @flow(name="approvals-waiting-refused")
    def says() -> None:
        with SyncPrefectClient(API_URL, httpx_settings={"transport": httpx.MockTransport(answer)}) as client:
            waiting = _Waiting(client, uuid4(), _pause(), 5)
            waiting.say()
            waiting.say()

    with caplog.at_level(logging.DEBUG, logger="prefect.flow_runs"):
        says()
    said = [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs" and "could not" in r.getMessage()]
    assert len(said) == 2 and "could not say the run still waits" in said[0], said
    assert "could not delete an earlier saying" in said[1], said
    for line in said:
        said_without_the_password(line)


def test_an_artifact_the_api_refuses_is_said_without_the_password_of_the_api_url(caplog):
    from flows.artifacts import for_people

    def refused():
        raise refused_at("artifacts/")

    @flow(name="artifact-refused")
    def summarises():
        return for_people("summary", refused)

    with caplog.at_level(logging.INFO):
        assert summarises() is None
    (said,) = [m for m in _warned(caplog) if "artifact could not be created" in m]
    said_without_the_password(said)


def test_other_runs_unread_on_the_api_are_said_without_the_password_in_the_error_or_its_causes(monkeypatch):
    """A finalize stops on it (FinalizeIncomplete raised from it): the run's log prints it with its causes."""
    import traceback

    import flows.finalize
    from flows.finalize import PrefectApiFailed, runs_within
    from rollway.targets import Targets

    def refused(*args, **kwargs):
        raise refused_at("flow_runs/filter")

    monkeypatch.setattr(flows.finalize, "unfinished_runs", refused)
    with pytest.raises(PrefectApiFailed) as failed:
        runs_within("finalize", Targets(cluster="c", canary_service="s"), 30, starting_within_seconds=60)
    logged = "".join(traceback.format_exception(failed.value))
    assert API_PASSWORD not in logged and "'https://rollway:***@prefect.internal/api/flow_runs/filter'" in logged, \
        logged
