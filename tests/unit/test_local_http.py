"""The tests' own HTTP servers are quiet about a client that hung up, and only about that."""

from __future__ import annotations

import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler

from tests.local_http import QuietHTTPServer


def served(fail: BaseException | None) -> str:
    """What the server printed to stderr answering one request whose client hangs up (reset)
    before the answer is written, or whose handler raises ``fail`` once the client is gone."""
    hung_up = threading.Event()
    handled = threading.Event()

    class Late(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hung_up.wait(30)
            try:
                if fail is not None:
                    raise fail
                for _ in range(50):  # the first write after the reset may still be taken
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
            finally:
                handled.set()

        def log_message(self, *args) -> None:
            pass

    class Joined(QuietHTTPServer):
        # server_close waits for the handler's thread, so whatever handle_error prints is
        # written before the test reads stderr (the handler's finally runs before it).
        daemon_threads = False

    server = Joined(("127.0.0.1", 0), Late)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = socket.create_connection(server.server_address)
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset: the client gave up on its answer
        hung_up.set()
        assert handled.wait(30)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)


def test_a_client_that_hung_up_before_its_answer_is_not_reported(capsys):
    served(None)
    assert "Exception occurred" not in capsys.readouterr().err


def test_a_handler_s_own_error_is_still_reported(capsys):
    served(ValueError("a handler's own mistake"))
    err = capsys.readouterr().err
    assert "Exception occurred during processing of request" in err and "a handler's own mistake" in err, err
