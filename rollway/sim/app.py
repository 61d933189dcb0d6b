"""A tiny stand-in for Webordinary's edit API, for the validation checks: real HTTP on 127.0.0.1.

Serves what the seed's ``validate-deployment.sh`` calls:

- ``GET /health`` -> 200 ``{"status": "ok"}``;
- ``POST /sessions`` with ``{"clientId", "userId"}`` -> 201 ``{"sessionId": ...}``;
- ``POST /sessions/<id>/messages`` with ``{"instruction"}`` -> 202; an unknown session -> 404.

``faults`` switch each check's failure on while it runs: the health answer's status, a
session answer without a usable ``sessionId``, slow answers (past a client's timeout). Every
request is kept in ``requests`` (method, path), so a test can tell how often a POST was sent.

Usage::

    with ValidationApp() as app:
        app.faults.health_status = 503
        ... GET app.url + "/health" ...
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit
from typing import Any

_HOST = "127.0.0.1"


@dataclass
class Faults:
    """What the app gets wrong, switchable while it runs.

    Attributes:
        health_status: the status ``GET /health`` answers (503: unhealthy).
        health_body: when set, the JSON ``GET /health`` answers (with ``health_status``): a
            service that says it is down in a 200 (``{"status": "DOWN"}``).
        session_body: when set, the JSON ``POST /sessions`` answers instead of a session (``{}``:
            no sessionId; ``{"sessionId": 7}``: not a string); no session is created.
        session_status: the status ``POST /sessions`` answers.
        message_status: the status ``POST /sessions/<id>/messages`` answers for a known session.
        message_body: when set, the JSON that answer carries instead, and the message is not
            queued (``{"error": "queue unavailable"}`` in a 200).
        delay_seconds: how long every answer waits (a slow service, past a client's timeout).
        authorization: when set, the ``Authorization`` header every request must carry; any
            other request is answered 401 (a service behind a token).
    """

    health_status: int = 200
    health_body: Any = None
    session_body: Any = None
    session_status: int = 201
    message_status: int = 202
    message_body: Any = None
    delay_seconds: float = 0.0
    authorization: str | None = None


@dataclass
class _State:
    faults: Faults = field(default_factory=Faults)
    sessions: dict[str, list[str]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # tests read ``requests``; nothing on stderr

    def _answer(self, status: int, body: Any) -> None:
        delay = self.server.state.faults.delay_seconds
        if delay:
            time.sleep(delay)  # the fault itself: a slow service
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer to

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError:
            return None

    def _refused(self, state: _State) -> bool:
        """Answered 401 when the app wants a token this request does not carry."""
        wanted = state.faults.authorization
        if wanted is None or self.headers.get("Authorization") == wanted:
            return False
        self._answer(401, {"error": "unauthorized"})
        return True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        state = self.server.state
        with state.lock:
            state.requests.append(("GET", self.path))
            state.headers.append(dict(self.headers.items()))
        if self._refused(state):
            return
        # The query is not routed on: a health URL may carry a token (``/health?token=...``).
        if urlsplit(self.path).path == "/health":
            status, body = state.faults.health_status, state.faults.health_body
            self._answer(status, body if body is not None else {"status": "ok" if status < 400 else "unhealthy"})
        else:
            self._answer(404, {"error": f"no route GET {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        state = self.server.state
        body = self._body()
        with state.lock:
            state.requests.append(("POST", self.path))
            state.headers.append(dict(self.headers.items()))
        if self._refused(state):
            return
        parts = self.path.strip("/").split("/")
        if parts == ["sessions"]:
            self._create_session(state, body)
        elif len(parts) == 3 and parts[0] == "sessions" and parts[2] == "messages":
            self._message(state, parts[1], body)
        else:
            self._answer(404, {"error": f"no route POST {self.path}"})

    def _create_session(self, state: _State, body: Any) -> None:
        faults = state.faults
        if not isinstance(body, dict) or not body.get("clientId") or not body.get("userId"):
            self._answer(400, {"error": "clientId and userId are required"})
        elif faults.session_body is not None:
            self._answer(faults.session_status, faults.session_body)
        elif faults.session_status >= 400:
            self._answer(faults.session_status, {"error": "session service unavailable"})
        else:
            session_id = f"sess-{uuid.uuid4().hex[:12]}"
            with state.lock:
                state.sessions[session_id] = []
            self._answer(faults.session_status, {"sessionId": session_id, "clientId": body["clientId"]})

    def _message(self, state: _State, session_id: str, body: Any) -> None:
        with state.lock:
            known = session_id in state.sessions
        if not known:
            self._answer(404, {"error": f"unknown session {session_id}"})
        elif not isinstance(body, dict) or not body.get("instruction"):
            self._answer(400, {"error": "instruction is required"})
        elif state.faults.message_body is not None:
            self._answer(state.faults.message_status, state.faults.message_body)
        elif state.faults.message_status >= 400:
            self._answer(state.faults.message_status, {"error": "message queue unavailable"})
        else:
            with state.lock:
                state.sessions[session_id].append(body["instruction"])
            self._answer(state.faults.message_status, {"sessionId": session_id, "queued": True})


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: _State) -> None:
        super().__init__((_HOST, 0), _Handler)  # port 0: a free one, chosen by the system
        self.state = state


class ValidationApp:
    """The app on 127.0.0.1 and a free port, served from a thread while the context is open."""

    def __init__(self) -> None:
        self._state = _State()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def faults(self) -> Faults:
        return self._state.faults

    @property
    def sessions(self) -> dict[str, list[str]]:
        """Session id -> the instructions it received."""
        return self._state.sessions

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request received, as (method, path)."""
        return self._state.requests

    @property
    def headers(self) -> list[dict[str, str]]:
        """Every request's headers, in the order of ``requests``."""
        return self._state.headers

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``; raises RuntimeError when not started."""
        if self._server is None:
            raise RuntimeError("the validation app is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        if self._server is None:
            self._server = _Server(self._state)
            self._thread = threading.Thread(target=self._server.serve_forever, name="validation-app", daemon=True)
            self._thread.start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> "ValidationApp":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
