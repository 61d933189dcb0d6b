"""`rollway abort` never prints the password a PREFECT_API_URL carries.

A Prefect server behind basic auth is reached as http://user:password@host/api. An API that
refused a read (a wrong password, a proxy's 401) raised an httpx error quoting the URL it asked,
password and all: two of abort's warnings printed it as it came, where every other path hides it.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Iterator
from uuid import uuid4

from prefect.settings import PREFECT_API_URL, temporary_settings

from rollway.cli import ops
from tests.flows.test_cli_abort_wait import abort_a_paused_run_followed_by
from tests.local_http import QuietHTTPServer

PASSWORD = "hunter2-secret"


class _Refusing(BaseHTTPRequestHandler):
    """A server in front of the API that refuses every request: 401, as basic auth does."""

    def _refuse(self) -> None:
        self.send_response(401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_PATCH = do_DELETE = _refuse

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def api_refusing_with_a_password() -> Iterator[str]:
    """PREFECT_API_URL set, for the block, to a server on 127.0.0.1 that refuses every request,
    reached with a password in the URL; yields its address as said with the password hidden."""
    server = QuietHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"http://ops:{PASSWORD}@{host}/api"}):
            yield f"http://ops:***@{host}/api"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_the_rollout_clock_warning_hides_the_api_password(capsys):
    owner = uuid4()
    with api_refusing_with_a_password() as hidden:
        clock = ops.rollout_clock(owner)
    out, err = capsys.readouterr()
    said = " ".join(err.split())
    assert clock.speed == 1.0  # real time, as warned
    assert f"could not read the rollout's clock from flow run {owner}" in said, err
    assert PASSWORD not in out + err, err
    assert "401 Unauthorized" in said and hidden in said, err  # the API's answer and where, still said


def test_the_wait_after_a_reject_hides_the_api_password(monkeypatch, capsys):
    real_wait = ops.wait_for_run

    def wait_behind_basic_auth(*args, **kwargs):
        # The reject went through; the API is asked from then on through a URL with a password.
        with api_refusing_with_a_password():
            return real_wait(*args, **kwargs)

    run, out, said = abort_a_paused_run_followed_by(monkeypatch, capsys, wait_behind_basic_auth)
    assert f"could not follow flow run {run.name} ({run.id})" in said, said
    assert "the reject was sent: the run goes on rolling back" in said, said
    assert PASSWORD not in out + said, said
    assert "401 Unauthorized" in said and "http://ops:***@127.0.0.1:" in said, said
