"""A PREFECT_API_URL that names a web server other than Prefect's API (another service on the port,
a proxy path that is not the API's) answers every read with 404, as a Prefect API answers for a
block type nobody registered there. The commands took that for an empty API: "no rollway-targets
block named 'rollway-targets' on the Prefect API ... (saved there: none)", sending on-call to look
for a block that was never the problem."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Iterator

import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from rollway.cli import ops
from tests.local_http import QuietHTTPServer


class NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def not_a_prefect_api() -> Iterator[str]:
    server = QuietHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", ["status", "report"])
def test_a_url_that_is_not_a_prefect_api_is_said_to_be_so_not_an_empty_one(not_a_prefect_api, capsys, command) -> None:
    from rollway.cli.report import report

    run = {"status": lambda: ops.status(targets_block="rollway-targets", credentials_block="rollway-embedded"),
           "report": lambda: report(targets_block="rollway-targets", credentials_block="rollway-embedded")}[command]
    with temporary_settings({PREFECT_API_URL: not_a_prefect_api}):
        code = run()
    said = " ".join(capsys.readouterr().err.split())
    assert code == 1, said
    assert "saved there: none" not in said, said
    assert f"PREFECT_API_URL {not_a_prefect_api} does not answer as a Prefect API" in said, said
    assert "set PREFECT_API_URL to the API address `rollway up` printed" in said, said
