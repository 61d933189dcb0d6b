"""The HTTP checks against rollway.sim.app: real HTTP on 127.0.0.1, each fault switched on in turn."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Callable, Iterator
from urllib.parse import unquote_plus, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from rollway import deadline, http_checks
from rollway.sim.app import ValidationApp
from rollway.validation import ValidationSpec, no_session
from tests.local_http import QuietHTTPServer


@pytest.fixture(scope="module")
def app() -> Iterator[ValidationApp]:
    with ValidationApp() as running:
        yield running


@pytest.fixture(autouse=True)
def healthy(app: ValidationApp) -> None:
    app.faults.__init__()  # every test starts with no fault
    app.requests.clear()


def spec_for(url: str, **fields) -> ValidationSpec:
    return ValidationSpec(health_url=f"{url}/health", api_base_url=url, **fields)


def run_all(app, spec):
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
        message = http_checks.send_message(http, spec, session.detail) if session.passed else None
    return health, session, message


def test_a_healthy_service_passes_every_check(app):
    health, session, message = run_all(app, spec_for(app.url))
    assert [health.outcome, session.outcome, message.outcome] == ["passed"] * 3
    assert session.detail in app.sessions
    assert app.sessions[session.detail] == ["Test deployment"]  # the message reached the session it created
    assert "HTTP 200" in health.reason and "HTTP 202" in message.reason
    # What a pass stands on: the API took the message, which nothing here watches being processed.
    assert "the message was accepted; whether it was processed is not checked" in message.reason


def test_health_503_fails_with_status_and_body(app):
    app.faults.health_status = 503
    health, *_ = run_all(app, spec_for(app.url))
    assert health.outcome == "failed"
    assert "HTTP 503 from GET" in health.reason and '"unhealthy"' in health.reason
    assert health.retryable  # a 5xx may be a task still starting


def test_health_404_is_not_worth_retrying(app):
    spec = ValidationSpec(health_url=f"{app.url}/healthz", api_base_url=app.url)
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and "HTTP 404" in health.reason and not health.retryable


def test_a_health_url_nothing_answers_says_what_the_check_wanted_and_which_setting_names_it(app):
    """A wrong health path failed as "HTTP 404 from GET .../healthz; body: ...": neither what the
    check wanted nor that the address asked is the spec's, which read as the new version failing."""
    spec = ValidationSpec(health_url=f"{app.url}/healthz", api_base_url=app.url)
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and f"HTTP 404 from GET {app.url}/healthz, not the 2xx the check wants" \
        in health.reason, health.reason
    assert "no such path on the service: check spec.health_url" in health.reason, health.reason


@pytest.mark.parametrize(("fault", "check", "method"), [("session_status", "session", "POST"),
                                                        ("message_status", "message", "POST"),
                                                        ("health_status", "health", "GET")])
def test_a_refusal_says_the_2xx_the_check_wanted(app, fault, check, method):
    setattr(app.faults, fault, 400)
    health, session, message = run_all(app, spec_for(app.url))
    result = {"health": health, "session": session, "message": message}[check]
    assert result.outcome == "failed" and f"HTTP 400 from {method} " in result.reason, result
    assert "not the 2xx the check wants" in result.reason, result.reason


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"ok": True}, "no sessionId (keys: ok)"),
        ({"sessionId": 7}, "sessionId is 7"),
        ({"sessionId": ""}, 'sessionId is ""'),
        (["sess-1"], "a JSON list, not an object"),
    ],
)
def test_a_session_answer_without_a_usable_session_id_fails_saying_what_came_back(app, body, says):
    app.faults.session_body = body
    _, session, message = run_all(app, spec_for(app.url))
    assert session.outcome == "failed" and says in session.reason
    assert message is None and not session.retryable
    # A 2xx: the service may have made a session all the same; what it answered is kept to say so.
    assert session.answer_unclear == f"HTTP 201 but {says}", session.answer_unclear


@pytest.mark.parametrize("dots", [".", ".."])
def test_a_session_id_of_dots_is_not_put_in_the_message_url(app, dots):
    """A sessionId of "." or ".." was put in messages_path as it was: the URL's dot segments were
    resolved, and the test message went to /sessions/messages or to the API's parent path, a
    route other than the session's, whose answer the message check judged."""
    app.faults.session_body = {"sessionId": dots}
    _, session, message = run_all(app, spec_for(app.url))
    assert session.outcome == "failed" and message is None, session
    says = f'sessionId is "{dots}", which a URL path reads as a relative segment, not an id'
    assert says in session.reason and session.answer_unclear == f"HTTP 201 but {says}", session
    assert app.requests == [("GET", "/health"), ("POST", "/sessions")], app.requests
    # The skipped message check says a session may be left behind: the service answered a 2xx.
    assert "may have been created on the service and is left behind" in no_session(session, spec_for(app.url))


def test_a_session_refused_by_the_service_quotes_its_answer(app):
    app.faults.session_status = 500
    _, session, _ = run_all(app, spec_for(app.url))
    assert "HTTP 500 from POST" in session.reason and "session service unavailable" in session.reason
    assert session.answer_unclear == "HTTP 500"  # a server error says nothing of what it did


def test_a_session_answer_that_is_not_json_says_a_session_may_exist():
    # The simulated app answers JSON only: an HTML page from a proxy, given by a transport.
    answer = httpx.MockTransport(lambda request: httpx.Response(201, text="<html>created</html>"))
    with httpx.Client(transport=answer) as http:
        session = http_checks.create_session(http, spec_for("http://api.test"))
    assert session.outcome == "failed" and session.answer_unclear == "HTTP 201, not JSON", session


def test_an_answer_of_json_nested_deeper_than_python_reads_is_judged_not_a_crash():
    # 100,000 nested arrays, well under the MiB read: json's RecursionError went through every
    # check, and the run failed on its traceback after as many attempts, the checks after it unmade.
    deep = "[" * 100_000 + "]" * 100_000
    answer = httpx.MockTransport(lambda request: httpx.Response(200 if request.method == "GET" else 201, text=deep))
    spec = spec_for("http://api.test")
    with httpx.Client(transport=answer) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
        message = http_checks.send_message(http, spec, "sess-1")
    # No verdict can be read from it: its status decides, as for a body that is not JSON.
    assert health.outcome == "passed" and message.outcome == "passed", (health, message)
    assert session.outcome == "failed" and session.answer_unclear == "HTTP 201, not JSON a check can read", session
    assert "is JSON nested too deep to read" in session.reason, session.reason


def test_a_session_the_service_refused_with_a_4xx_was_not_created(app):
    app.faults.session_status = 422
    _, session, _ = run_all(app, spec_for(app.url))
    assert session.outcome == "failed" and session.answer_unclear is None and not session.answer_lost


def test_a_message_to_an_unknown_session_fails(app):
    spec = spec_for(app.url)
    with http_checks.client(spec) as http:
        message = http_checks.send_message(http, spec, "sess-nobody")
    assert message.outcome == "failed"
    assert "HTTP 404" in message.reason and "unknown session sess-nobody" in message.reason


def test_a_failing_message_queue_fails_the_message_check(app):
    app.faults.message_status = 503
    _, session, message = run_all(app, spec_for(app.url))
    assert session.passed and message.outcome == "failed" and "message queue unavailable" in message.reason


def test_slow_answers_fail_on_the_timeout_and_a_sent_post_is_not_retried(app):
    app.faults.delay_seconds = 0.5
    spec = spec_for(app.url, timeout_seconds=0.1)
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
    assert health.outcome == session.outcome == "failed"
    assert "timed out" in health.reason and "ReadTimeout" in health.reason
    # The setting that bounds it, and what to do: a slow endpoint read as a dead one.
    assert (f"GET {app.url}/health timed out after 0.1 s (spec.timeout_seconds): " in health.reason
            and health.reason.endswith("; raise spec.timeout_seconds if it answers, only slowly")), health.reason
    assert f"POST {app.url}/sessions timed out after 0.1 s (spec.timeout_seconds): " in session.reason, session.reason
    assert health.retryable
    # The POST reached the server (it may have made a session): another would make a second one.
    assert not session.retryable and "timed out" in session.reason
    assert session.answer_lost and not health.answer_lost  # a session may exist on the service


def test_a_request_that_times_out_at_the_interval_of_the_waiting_lines_is_not_said_to_be_still_waited_on(
        app, monkeypatch):
    """The default bound is 10 s, the interval of the "still waiting" lines: a request given up on
    then was said to be waited on "after 10 s of 10 s" in the instant before it failed. Here both
    are 2 s."""
    assert ValidationSpec.model_fields["timeout_seconds"].default == deadline.WAITING_SAID_EVERY_SECONDS
    monkeypatch.setattr(deadline, "WAITING_SAID_EVERY_SECONDS", 2.0)
    app.faults.delay_seconds = 2.5
    spec = spec_for(app.url, timeout_seconds=2)
    said: list[str] = []
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec, said.append)
    assert health.outcome == "failed" and "timed out" in health.reason
    assert said == []


def test_a_check_with_nobody_to_tell_is_not_woken_every_10_s_to_say_it_still_waits(app, monkeypatch):
    """Without a ``say`` (a check called outside a run), the wait for an answer woke every 10 s to
    call a "still waiting" line that went nowhere; with one, the lines are said as before."""
    handed: list[object] = []
    bounded = http_checks.within

    def spy(seconds, work, **options):
        handed.append(options.get("waiting"))
        return bounded(seconds, work, **options)

    monkeypatch.setattr(http_checks, "within", spy)
    spec = spec_for(app.url)
    said: list[str] = []
    with http_checks.client(spec) as http:
        assert http_checks.check_health(http, spec).passed
        assert http_checks.check_health(http, spec, said.append).passed
    assert handed[0] is None, "a wait with nobody to tell was woken to tell them"
    assert callable(handed[1])
    handed[1](3.0)  # what a person reads while the answer is awaited
    assert said == [f"still waiting for the answer to GET {app.url}/health after 3 s of 10 s (spec.timeout_seconds)"]
    # A half second up, as every span measured: ``:.0f`` took 2.5 s to the even "2 s".
    said.clear()
    handed[1](2.5)
    assert said == [f"still waiting for the answer to GET {app.url}/health after 3 s of 10 s (spec.timeout_seconds)"]


def test_a_post_that_reached_the_service_says_why_it_had_one_try_of_several(app):
    """With spec.attempts 3, a health GET answered 503 is tried three times, and a session or
    message POST answered 503, or whose answer was lost, once: the report read "1 try" under
    "3 attempts per check" as a retry skipped, with nothing saying a second POST could make a
    second test session (or run the instruction twice). Neither a 5xx (a load balancer's 503 with
    no healthy target, say) nor a lost answer says the service got it: said as may, not as fact."""
    spec = spec_for(app.url, attempts=3)
    app.faults.message_status = 503
    with http_checks.client(spec) as http:
        made = http_checks.create_session(http, spec)
        message = http_checks.send_message(http, spec, made.detail)
        app.faults.session_status = 503
        session = http_checks.create_session(http, spec)
    assert not session.retryable and session.reason.endswith(
        "; not sent again (spec.attempts 3): it may have reached the service (a 5xx or a lost answer does not "
        "say), and a second POST could create a second test session"), session.reason
    assert not message.retryable and message.reason.endswith(
        "; not sent again (spec.attempts 3): it may have reached the service (a 5xx or a lost answer does not "
        "say), and a second POST could have the test instruction run twice"), message.reason

    app.faults.session_status = 201
    app.faults.delay_seconds = 0.5
    slow = spec_for(app.url, attempts=2, timeout_seconds=0.1)
    with http_checks.client(slow) as http:
        lost = http_checks.create_session(http, slow)
    assert lost.answer_lost and lost.reason.endswith(
        "; not sent again (spec.attempts 2): it may have reached the service (a 5xx or a lost answer does not "
        "say), and a second POST could create a second test session"), lost.reason

    # One attempt asked for: nothing was held back, and nothing is said.
    app.faults.delay_seconds = 0
    app.faults.session_status = 503
    once = spec_for(app.url, attempts=1)
    with http_checks.client(once) as http:
        assert "not sent again" not in http_checks.create_session(http, once).reason


def test_a_refused_connection_is_a_failed_check_and_safe_to_retry_even_for_a_post():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    spec = spec_for(f"http://127.0.0.1:{port}", timeout_seconds=2)
    with http_checks.client(spec) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
        message = http_checks.send_message(http, spec, "s")
    for result in (health, session, message):
        assert result.outcome == "failed" and "ConnectError" in result.reason
        assert result.retryable and not result.answer_lost  # never sent: nothing was created
        assert result.reason.endswith("; it was not sent"), result.reason


def test_a_post_that_failed_before_anything_was_sent_says_no_session_was_created(app):
    """A scheme httpx does not speak and a header it will not write fail before a connection is
    made: these POSTs were reported as sent with their answer lost ("a session may exist"),
    which sent a person looking on the service for a test session that was never made."""
    # An adapter may be given any spec: the spec's own check (http or https) is not its guard.
    ftp = spec_for(app.url).model_copy(update={"api_base_url": app.url.replace("http://", "ftp://")})
    with http_checks.client(ftp) as http:
        unsupported = http_checks.create_session(http, ftp)
    spec = spec_for(app.url)
    with httpx.Client(timeout=2, headers={"X-Trace": "a\x00b"}) as http:  # a header h11 refuses to write
        illegal = http_checks.create_session(http, spec)
        unsent_message = http_checks.send_message(http, spec, "s")
    assert "UnsupportedProtocol" in unsupported.reason and "LocalProtocolError" in illegal.reason
    for result in (unsupported, illegal, unsent_message):
        assert result.outcome == "failed" and not result.answer_lost, result
        assert "it was not sent" in result.reason, result.reason
        # Sending it again meets the same refusal: not worth the spec's attempts.
        assert not result.retryable
    assert app.requests == []  # provably: nothing reached the service
    assert no_session(unsupported, spec) == "no test session was created"


def test_a_health_get_httpx_refuses_is_not_retried_and_says_why(app):
    """A scheme httpx does not speak and a header h11 will not write are refused the same way on
    every attempt: the GET was retried all the same, spending attempts times the delay before
    failing with the first attempt's reason."""
    ftp = spec_for(app.url).model_copy(update={"health_url": app.url.replace("http://", "ftp://") + "/health"})
    with http_checks.client(ftp) as http:
        unsupported = http_checks.check_health(http, ftp)
    spec = spec_for(app.url)
    with httpx.Client(timeout=2, headers={"X-Trace": "a\x00b"}) as http:  # a header h11 refuses to write
        illegal = http_checks.check_health(http, spec)
    assert "UnsupportedProtocol" in unsupported.reason and "LocalProtocolError" in illegal.reason
    for result in (unsupported, illegal):
        assert result.outcome == "failed" and not result.retryable, result
        assert "it was not sent and is not tried again" in result.reason, result.reason
    assert app.requests == []


def test_a_connection_that_breaks_with_no_message_says_the_exception_not_nothing():
    # httpx words a socket error with none of its own as an error with no message: the check's
    # reason ended "ReadError: ", its "no detail" never said (an exception is always true).
    def broken(request):
        raise httpx.ReadError("", request=request)

    with httpx.Client(transport=httpx.MockTransport(broken)) as http:
        health = http_checks.check_health(http, spec_for("http://api.test"))
    assert health.outcome == "failed" and health.retryable
    assert health.reason.startswith("GET http://api.test/health failed: ReadError with no message, raised at "
                                    "tests/adapters/test_http_checks.py:"), health.reason


def test_a_dns_lookup_that_does_not_answer_fails_on_the_timeout_and_nothing_is_sent_late(app, monkeypatch):
    """getaddrinfo takes no timeout: with a resolver that did not answer, a check waited as long
    as the C library retried (half a minute and more), past its 0.5-s timeout. It now fails on
    the timeout as a connection never made (safe to try again, even for a POST), and when the
    lookup answers at last the request given up on is not sent after all."""
    answer, resolve = threading.Event(), socket.getaddrinfo
    host = "edit.hanging-resolver.test"

    def lookup(name, *args, **kwargs):
        if name == host:
            answer.wait(30)  # the resolver that does not answer
            name = "127.0.0.1"
        return resolve(name, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    port = app.url.rsplit(":", 1)[1]
    spec = spec_for(f"http://{host}:{port}", timeout_seconds=0.5)
    try:
        with http_checks.client(spec) as http:
            began = time.monotonic()
            health = http_checks.check_health(http, spec)
            session = http_checks.create_session(http, spec)
            took = time.monotonic() - began
    finally:
        answer.set()  # the lookups answer now: the requests given up on must not go out
    assert took < 15, f"two checks took {took:.1f} s, each with a 0.5-s timeout"
    for result in (health, session):
        assert result.outcome == "failed" and "ConnectTimeout" in result.reason
        assert f"no connection to {host} within 0.5 s (its DNS lookup" in result.reason
        assert result.retryable  # never sent: a second POST makes no second session
    time.sleep(0.5)  # the left-behind requests connect now, and are shut before they send
    assert app.requests == []


class _LocalServer:
    """A service of the test's own on 127.0.0.1: ``with`` starts it and gives its URL. Each
    request's body is read, then ``answer`` writes the reply."""

    protocol_version = "HTTP/1.0"

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self) -> str:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = service.protocol_version

            def log_message(self, *args) -> None:
                pass

            def _send(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                service.answer(self)

            do_GET = do_POST = _send

        self._server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()


class _LoginRedirect(_LocalServer):
    """A front door that sends every request to a login page (an expired SSO cookie, a wrong host):
    every path answers 302 to ``location`` (default /login), and /login answers 200 with an HTML form."""

    def __init__(self, location: str = "/login", body: bytes = b"") -> None:
        self.location, self.body = location, body

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        if request.path == "/login":
            body = b"<html><form>Sign in</form></html>"
            request.send_response(200)
            request.send_header("Content-Type", "text/html")
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            request.wfile.write(body)
        else:
            request.send_response(302)
            request.send_header("Location", self.location)
            request.send_header("Content-Length", str(len(self.body)))
            request.end_headers()
            request.wfile.write(self.body)


class _MislabelledGzip(_LocalServer):
    """A proxy's error page labelled ``Content-Encoding: gzip`` that is not: 503 to a GET, 201 to a POST."""

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        body = b"upstream down"
        request.send_response(503 if request.command == "GET" else 201)
        request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def test_an_answer_whose_body_its_content_encoding_cannot_decode_keeps_its_status():
    # "failed: DecodingError" said neither the 503 nor that the service had answered at all, and
    # the session POST's 201 read as an answer lost.
    with _MislabelledGzip() as url:
        spec = spec_for(url)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
            session = http_checks.create_session(http, spec)
    assert health.outcome == "failed" and health.reason.startswith(f"HTTP 503 from GET {url}/health"), health
    assert "a body its Content-Encoding gzip could not decode (DecodingError: " in health.reason, health.reason
    assert session.outcome == "failed" and not session.answer_lost, session
    assert session.answer_unclear == "HTTP 201, not JSON" and "HTTP 201 from POST" in session.reason, session


def test_a_redirect_to_a_login_page_is_not_a_healthy_service_nor_a_sent_message():
    with _LoginRedirect() as url:
        spec = spec_for(url)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
            message = http_checks.send_message(http, spec, "sess-1")
    assert health.outcome == "failed" and "HTTP 302" in health.reason
    assert message.outcome == "failed" and "HTTP 302" in message.reason
    # What to do, on the field that sent it there: a person read a bare "HTTP 302 to /login" as
    # the new version failing its check.
    assert health.reason.endswith(
        "; redirects are not followed, as the check wants the service's own answer: set spec.health_url to the "
        "address that answers itself, or remove what sends it on (a login in front of it, a wrong host)"), health.reason
    assert message.reason.endswith(
        "; redirects are not followed, as the check wants the service's own answer: set spec.api_base_url to the "
        "address that answers itself, or remove what sends it on (a login in front of it, a wrong host)"), message.reason


@pytest.mark.parametrize("status", [302, 304])
def test_a_3xx_without_a_location_is_a_failed_check_not_a_crash(status):
    # A proxy that answers 302 without saying where (or a 304 to a request that asked no such
    # thing): the checks read the Location header that was not there, and the run crashed on a
    # KeyError at its health check, with no other check made and no artifact.
    with _Echo(status, lambda request: "") as url:
        spec = spec_for(url)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
            session = http_checks.create_session(http, spec)
            message = http_checks.send_message(http, spec, "sess-1")
    for result, method in ((health, "GET"), (session, "POST"), (message, "POST")):
        assert result.outcome == "failed" and f"HTTP {status} from {method} {url}/" in result.reason, result.reason
    assert not health.retryable  # a 3xx is the address, not a task still starting


def test_a_redirect_with_credentials_in_its_url_is_reported_without_them():
    # An SSO hand-off written by a misconfigured proxy: a user and password in the URL, a token
    # in the fragment.
    with _LoginRedirect("https://sso-bot:s3cr3t-pass@login.example.com/cb#access_token=t0k3n") as url:
        spec = spec_for(url)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and "HTTP 302 to https://****@login.example.com/cb" in health.reason
    assert "s3cr3t-pass" not in health.reason and "sso-bot" not in health.reason and "t0k3n" not in health.reason


def test_a_token_in_the_query_is_sent_but_never_shown(app):
    spec = ValidationSpec(health_url=f"{app.url}/health?token=s3cr3t&region=eu", api_base_url=app.url)
    health, _, _ = run_all(app, spec)
    assert health.outcome == "passed"
    assert ("GET", "/health?token=s3cr3t&region=eu") in app.requests  # sent as given
    assert "s3cr3t" not in health.reason and "token=****&region=****" in health.reason
    app.faults.health_status = 503
    failed, _, _ = run_all(app, spec)
    assert failed.outcome == "failed" and "s3cr3t" not in failed.reason and "token=****" in failed.reason


class _Echo(_LocalServer):
    """A service whose error page (``status``) quotes the request it answers: ``page`` writes it."""

    def __init__(self, status: int, page: Callable[[BaseHTTPRequestHandler], str]) -> None:
        self.status, self.page = status, page

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        body = self.page(request).encode()
        request.send_response(self.status)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)


def _not_found_page(request: BaseHTTPRequestHandler) -> str:
    """A framework's 404 page: the URL it was asked, query and all."""
    return f"<h1>Not found</h1><p>Request URL: http://{request.headers['Host']}{request.path}</p>"


def _refused_token_page(request: BaseHTTPRequestHandler) -> str:
    """An expired token's 401 page (or a gateway's debug answer): the Authorization header it refused."""
    sent = request.headers.get("Authorization", "")
    return f'{{"error": "invalid_token", "detail": "token {sent.partition(" ")[2]} has expired", "header": "{sent}"}}'


def test_a_token_echoed_by_an_error_page_or_a_redirects_body_is_not_shown():
    # The query is masked wherever the URL is shown, but the quoted body repeated it: a 404 page
    # echoing the URL, a redirect to a login page whose body carries the URL to come back to.
    token = "s3cr3t/tok+en"
    with _Echo(404, _not_found_page) as url:
        spec = ValidationSpec(health_url=f"{url}/health?token={token}&region=eu", api_base_url=url)
        with http_checks.client(spec) as http:
            echoed = http_checks.check_health(http, spec)
    back = "/login?next=%2Fhealth%3Ftoken%3Ds3cr3t%2Ftok%2Ben"
    with _LoginRedirect(back, body=f"Found. Redirecting to {back}".encode()) as url:
        spec = ValidationSpec(health_url=f"{url}/health?token={token}", api_base_url=url)
        with http_checks.client(spec) as http:
            redirected = http_checks.check_health(http, spec)
    assert echoed.outcome == "failed" and "HTTP 404" in echoed.reason and "Request URL" in echoed.reason
    assert redirected.outcome == "failed" and "HTTP 302 to /login?next=****" in redirected.reason
    for result in (echoed, redirected):
        assert "s3cr3t" not in result.reason and "tok+en" not in result.reason and "tok%2Ben" not in result.reason
    assert "/health?token=****&region=eu</p>" in echoed.reason  # the echo is still quoted, masked
    # A token alone, no key before it (``?<api key>``): the URL showed it whole as a key, the echo quoted it.
    with _Echo(404, _not_found_page) as url:
        spec = ValidationSpec(health_url=f"{url}/health?s3cr3tt0kenvalue", api_base_url=url)
        with http_checks.client(spec) as http:
            alone = http_checks.check_health(http, spec)
    assert "s3cr3t" not in alone.reason, alone.reason
    assert f"from GET {url}/health?****, " in alone.reason and "/health?****</p>" in alone.reason


def _refused_key_page(request: BaseHTTPRequestHandler) -> str:
    """An API's 401 naming the key it refused, as its framework decoded it from the query."""
    return f"invalid api key {unquote_plus(urlsplit(request.path).query)!r}"


@pytest.mark.parametrize(("query", "secrets"), [
    # Percent-encoded as sent: the body masked it as sent, not as a page quoting it decoded.
    ("s3cr3t%2Ftok%2Ben", ("s3cr3t", "tok+en")),
    # Base64, its "=" padding read as a key's empty value: the URL and the body showed it but for it.
    ("czNjcjN0dDBrZW4=", ("czNjcjN0dDBrZW4",)),
])
def test_a_token_alone_in_the_query_a_page_quotes_decoded_is_not_shown(query, secrets):
    # A token given alone (``?<api key>``) that a 401 page names: quoted whole in the log and the artifact.
    with _Echo(401, _refused_key_page) as url:
        spec = ValidationSpec(health_url=f"{url}/health?{query}", api_base_url=url)
        with http_checks.client(spec) as http:
            refused = http_checks.check_health(http, spec)
    assert refused.outcome == "failed" and f"HTTP 401 from GET {url}/health?****, " in refused.reason, refused.reason
    assert [secret for secret in secrets if secret in refused.reason] == [], refused.reason
    assert "body: invalid api key '****'" in refused.reason, refused.reason


def test_a_token_an_error_page_echoes_from_the_authorization_header_is_not_shown():
    # The check's reason is logged, stored in the validation artifact and the ledger: the Secret
    # block's value, quoted back by the service's 401 page, was in all three.
    token = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0"
    with _Echo(401, _refused_token_page) as url:
        spec = ValidationSpec(health_url=f"{url}/health", api_base_url=url)
        with http_checks.client(spec, SecretStr(f"Bearer {token}")) as http:
            refused = http_checks.check_health(http, spec)
    assert refused.outcome == "failed" and "HTTP 401" in refused.reason and "invalid_token" in refused.reason
    assert token not in refused.reason and "c2VjcmV0" not in refused.reason
    assert "token **** has expired" in refused.reason  # the echo is still quoted, masked
    assert "spec.authorization_secret_block" in refused.reason


def test_an_authorization_value_that_is_not_one_header_line_is_trimmed_or_refused_unquoted(app):
    # httpx refused it at the first request with "Illegal header value b'Bearer <token>\\n'",
    # which every check quoted as its reason.
    app.faults.authorization = "Bearer s3cr3t"
    spec = spec_for(app.url)
    with http_checks.client(spec, SecretStr("Bearer s3cr3t\n")) as http:
        assert http_checks.check_health(http, spec).outcome == "passed"
    with pytest.raises(ValueError) as refused:
        http_checks.client(spec, SecretStr("Bearer s3cr3t\r\nX-Debug: on"))
    assert "holds a line break (character 14)" in str(refused.value) and "s3cr3t" not in str(refused.value)


def test_an_authorization_header_is_never_sent_in_clear_text_to_another_host(app, monkeypatch):
    """The Secret block's value went as the Authorization header over plain http:// to any host:
    readable, and replayable, on every network between the worker and the service. The address
    here reaches the app (its name resolves to 127.0.0.1): what is refused is the URL, before
    any request, and the app sees none."""
    host, resolve = "edit.plain-http.test", socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo",
                        lambda name, *args, **kwargs: resolve("127.0.0.1" if name == host else name, *args, **kwargs))
    app.faults.authorization = "Bearer s3cr3t"
    port = app.url.rsplit(":", 1)[1]
    spec = spec_for(f"http://{host}:{port}")
    with pytest.raises(ValueError) as refused:
        http_checks.client(spec, SecretStr("Bearer s3cr3t"))
    said = str(refused.value)
    assert said == (f"the Authorization header (the value of spec.authorization_secret_block) would be sent in clear "
                    f"text over plain http:// to http://{host}:{port}/health and http://{host}:{port}, not this "
                    "machine: use https://, or, for a network you trust to carry it, set "
                    "spec.allow_plain_http_authorization; no request was sent"), said
    assert "s3cr3t" not in said
    assert app.requests == []
    # Without a header nothing secret is sent: plain http:// to any host is checked, as curl did.
    with http_checks.client(spec) as http:
        assert http_checks.check_health(http, spec).outcome == "failed"  # the app wants the token
    assert app.requests == [("GET", "/health")]
    # Said explicitly, the header goes over plain http://, and is what the app wanted.
    allowed = spec_for(f"http://{host}:{port}", allow_plain_http_authorization=True)
    with http_checks.client(allowed, SecretStr("Bearer s3cr3t")) as http:
        health = http_checks.check_health(http, allowed)
    assert health.passed, health.reason


def test_an_authorization_header_goes_over_plain_http_to_this_machine(app):
    # 127.0.0.0/8 (and ::1, localhost) never leaves the machine: a sidecar, a port-forward, the stand-in of `make up`.
    app.faults.authorization = "Bearer s3cr3t"
    spec = spec_for(app.url, authorization_secret_block="edit-api-token")  # the spec's own rule lets it by too
    assert spec.health_url.startswith("http://127.0.0.1:")
    with http_checks.client(spec, SecretStr("Bearer s3cr3t")) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
    assert health.passed and session.passed, (health.reason, session.reason)


@pytest.mark.parametrize("body", ["DOWN", "<html><body><h1>Service Unavailable</h1> status: down</body></html>"])
def test_a_health_answer_of_200_that_is_not_json_passes_as_curl_f_passed_it(body):
    # The rule: the status decides, as the seed's `curl -f`; the body is read only as a JSON object
    # (a verdict field: status, healthy, ok, success, error). Free text has no rule to read it by:
    # "DOWN" here, but "0 errors down from 3" or a page that mentions "down" elsewhere would fail.
    with _Echo(200, lambda request: body) as url:
        spec = spec_for(url)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.passed, health.reason


class _Drip(_LocalServer):
    """A service that sends its answer a piece at a time, each well within a read timeout, for far
    longer than the whole timeout: its body a byte at a time after a 200 at once (a streaming
    endpoint behind the health path), or, with ``headers``, its status line and then one header
    line at a time (a proxy holding a slow upstream's answer open). With ``healthy``, /health
    answers at once and keeps the connection open."""

    protocol_version = "HTTP/1.1"

    def __init__(self, seconds: float, *, headers: bool = False, healthy: bool = False) -> None:
        self.seconds, self.headers, self.healthy = seconds, headers, healthy

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        if self.healthy and request.path == "/health":
            request.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            return
        if self.headers:
            request.wfile.write(b"HTTP/1.1 200 OK\r\n")
            piece, last = b"X-Waiting: yes\r\n", b"Content-Length: 2\r\n\r\nok"
        else:
            request.send_response(200)
            request.send_header("Content-Type", "text/plain")
            request.send_header("Transfer-Encoding", "chunked")
            request.end_headers()
            piece, last = b"1\r\n.\r\n", b"0\r\n\r\n"
        end = time.monotonic() + self.seconds
        try:
            while time.monotonic() < end:
                request.wfile.write(piece)
                request.wfile.flush()
                time.sleep(0.05)
            request.wfile.write(last)
        except OSError:
            pass  # the client gave up: what is tested


def test_an_answer_that_trickles_in_past_the_timeout_fails_on_it():
    # Each byte arrives within the read timeout, so httpx's per-read timeout never fires: the
    # spec's timeout must bound the whole answer, or one such endpoint holds the validation run
    # (and its flow) for as long as it keeps sending.
    with _Drip(seconds=3.0) as url:
        spec = spec_for(url, timeout_seconds=0.5)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
            session = http_checks.create_session(http, spec)
    assert health.outcome == "failed" and "timed out" in health.reason and health.retryable, health.reason
    # The POST was sent and answered in part: sending it again could make a second session.
    assert session.outcome == "failed" and "timed out" in session.reason and not session.retryable, session.reason


def test_headers_that_trickle_in_past_the_timeout_fail_on_it():
    # Only the body was bounded: the status and headers were read for as long as the server sent
    # them, a line at a time, and the check then failed "within 0.5 s" after all of it.
    with _Drip(seconds=12.0, headers=True) as url:
        spec = spec_for(url, timeout_seconds=0.5)
        with http_checks.client(spec) as http:
            began = time.monotonic()
            health = http_checks.check_health(http, spec)
            took = time.monotonic() - began
            session = http_checks.create_session(http, spec)
    assert took < 6.0, f"the health check took {took:.1f} s, its timeout 0.5 s"
    assert health.outcome == "failed" and "timed out" in health.reason and health.retryable, health.reason
    assert "ReadTimeout" in health.reason and "not complete within 0.5 s" in health.reason
    assert session.outcome == "failed" and "timed out" in session.reason and not session.retryable, session.reason
    assert session.seconds < 6.0


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"status": "DOWN", "components": {"db": {"status": "DOWN"}}}, 'its body says status "DOWN"'),
        ({"status": "fail", "output": "sqs unreachable"}, 'its body says status "fail"'),
        ({"status": "unhealthy"}, 'its body says status "unhealthy"'),
        ({"error": "database connection refused"}, "its body carries an error"),
        # A verdict as a boolean (terminus', many hand-written endpoints') read as nothing wrong.
        ({"healthy": False, "checks": {"sqs": "timeout"}}, 'its body says "healthy": false'),
        ({"ok": False}, 'its body says "ok": false'),
        ({"status": False}, 'its body says "status": false'),
    ],
)
def test_a_health_answer_of_200_that_says_the_service_is_down_fails(app, body, says):
    # Health endpoints that always answer 200 and put the verdict in the body (Spring's, the
    # IETF draft's "fail") passed as healthy: the check read the status code alone.
    app.faults.health_body = body
    health, *_ = run_all(app, spec_for(app.url))
    assert health.outcome == "failed" and f"HTTP 200 from GET {app.url}/health but {says}" in health.reason
    assert health.retryable  # as a 503: a task may still be starting


@pytest.mark.parametrize("body", [{"status": "ok"}, {"status": "UP", "error": None}, {"status": "pass", "errors": []},
                                  "OK", ["fine"], {"healthy": True, "ok": True, "degraded": False}])
def test_a_health_answer_of_200_that_says_nothing_wrong_passes(app, body):
    app.faults.health_body = body
    health, *_ = run_all(app, spec_for(app.url))
    assert health.passed, health.reason


def test_a_message_answered_200_with_an_error_fails_the_message_check(app):
    # The message API answered 200 and said it could not queue the instruction: "passed", and
    # nothing reached the edit container.
    app.faults.message_status, app.faults.message_body = 200, {"error": "queue unavailable", "queued": False}
    _, session, message = run_all(app, spec_for(app.url))
    assert session.passed and app.sessions[session.detail] == []
    assert message.outcome == "failed" and "HTTP 200 from POST" in message.reason
    assert "but its body carries an error" in message.reason and "queue unavailable" in message.reason
    assert not message.retryable  # it reached the server: a second POST could queue it twice


def test_a_message_answered_200_with_success_false_fails_the_message_check(app):
    # An API that says its verdict as a boolean passed the message check on its 200.
    app.faults.message_status, app.faults.message_body = 200, {"success": False, "message": "could not queue"}
    _, session, message = run_all(app, spec_for(app.url))
    assert session.passed and app.sessions[session.detail] == []
    assert message.outcome == "failed" and 'but its body says "success": false' in message.reason, message.reason
    assert "could not queue" in message.reason


def test_headers_that_trickle_in_on_a_kept_alive_connection_fail_on_the_timeout_too():
    # The second request on one client went over the connection the first left open: no new
    # connection, so nothing to cut when its time was up.
    with _Drip(seconds=12.0, headers=True, healthy=True) as url:
        spec = spec_for(url, timeout_seconds=0.5)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
            session = http_checks.create_session(http, spec)
    assert health.passed, health.reason
    assert session.outcome == "failed" and "not complete within 0.5 s" in session.reason, session.reason
    assert session.seconds < 6.0, session.seconds


class _Flood(_LocalServer):
    """A service that answers ``status`` with a body of ``size`` bytes (``chunk`` repeated) at
    once; with ``stall``, announced longer than it is, the connection then kept open without
    sending more: an error page that streams a large or endless body (a proxy relaying a dump)."""

    protocol_version = "HTTP/1.1"

    def __init__(self, status: int, size: int, chunk: bytes, *, stall: bool = False) -> None:
        self.status, self.size, self.chunk, self.stall = status, size, chunk, stall
        self.stop = threading.Event()

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        request.send_response(self.status)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", str(self.size * 4 if self.stall else self.size))
        request.end_headers()
        sent = 0
        try:
            while sent < self.size:
                request.wfile.write(self.chunk)
                sent += len(self.chunk)
            request.wfile.flush()
        except OSError:
            return  # the client stopped reading: what is tested
        if self.stall:
            self.stop.wait(10)

    def __exit__(self, *exc) -> None:
        self.stop.set()
        super().__exit__(*exc)


@pytest.mark.parametrize("size, chunk", [(4 * 1024 * 1024, b"overloaded " * 1000),
                                         (1024 * 1024, b"overloaded" * 128 + b"\n" * 768)])
def test_a_huge_error_body_is_read_in_part_and_the_status_reported_not_a_timeout(size, chunk):
    # 4 MiB at once, then nothing: the whole body was awaited (and kept in memory) until the
    # timeout, and a 503 was reported as the service not answering in time. Its first MiB whole,
    # then nothing: the check waited for the byte past the cap until the timeout, as well.
    with _Flood(503, size, chunk, stall=True) as url:
        # A timeout far above what the read takes even on a loaded machine: a check that waited
        # for it (the defect) takes 8 s, one that stops at the cap well under 4 s.
        spec = spec_for(url, timeout_seconds=8.0)
        with http_checks.client(spec) as http:
            started = time.monotonic()
            health = http_checks.check_health(http, spec)
            took = time.monotonic() - started
    assert health.outcome == "failed" and "HTTP 503 from GET" in health.reason, health.reason
    assert "timed out" not in health.reason and took < 4.0, (took, health.reason)
    assert "the first 1 MiB of its body (the rest was not read) ends: …" in health.reason, health.reason
    assert health.retryable


def test_an_error_body_of_exactly_the_cap_and_no_more_is_quoted_as_read_whole():
    with _Flood(503, 1024 * 1024, b"overloaded" * 128 + b"\n" * 768) as url:
        spec = spec_for(url, timeout_seconds=5.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and "HTTP 503 from GET" in health.reason, health.reason
    assert "the rest was not read" not in health.reason and "body ends: …" in health.reason, health.reason


def test_a_binary_error_body_is_described_not_quoted():
    # NULs, bytes that are not UTF-8, and at its end an escape that clears the terminal showing the log.
    junk = bytes(range(256)) * 4 + b"\x1b[2J\x00 fault"
    with _Flood(500, len(junk), junk) as url:
        spec = spec_for(url, timeout_seconds=5.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and "HTTP 500 from GET" in health.reason, health.reason
    assert "a binary body" in health.reason and "application/octet-stream" in health.reason, health.reason
    assert all(c.isprintable() for c in health.reason), repr(health.reason)


def test_a_huge_healthy_answer_passes_saying_its_body_was_read_in_part():
    with _Flood(200, 2 * 1024 * 1024, b'{"status": "UP"} ' * 100, stall=True) as url:
        spec = spec_for(url, timeout_seconds=2.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.passed, health.reason
    assert health.reason.endswith("its body was read to its first 1 MiB only, a verdict in it not read"), health.reason


class _Encoded(_LocalServer):
    """A service that answers ``status`` with ``body`` whole, as ``content_type``, gzip-compressed
    on the wire when ``gzip`` (a proxy compressing the error page it relays)."""

    def __init__(self, status: int, body: bytes, content_type: str, *, gzip: bool = False) -> None:
        self.status, self.content_type, self.gzip = status, content_type, gzip
        self.body = __import__("gzip").compress(body, 6) if gzip else body

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        request.send_response(self.status)
        request.send_header("Content-Type", self.content_type)
        if self.gzip:
            request.send_header("Content-Encoding", "gzip")
        request.send_header("Content-Length", str(len(self.body)))
        request.end_headers()
        try:
            request.wfile.write(self.body)
        except OSError:
            return  # the client stopped reading


def test_a_compressed_huge_error_body_is_read_to_its_first_mib_as_decoded_not_as_sent():
    # 4 MiB of numbered lines, well under 1 MiB on the wire: read whole, decoded (a dump that
    # compresses a hundredfold was held in memory whole) and quoted from its end, past the MiB the
    # reason says it read.
    lines = b"".join(b"dump line %08d\n" % i for i in range(4 * 1024 * 1024 // 16))
    with _Encoded(503, lines, "text/plain", gzip=True) as url:
        spec = spec_for(url, timeout_seconds=5.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and "HTTP 503 from GET" in health.reason, health.reason
    assert "the first 1 MiB of its body (the rest was not read) ends: …" in health.reason, health.reason
    last = int(health.reason.rsplit("dump line ", 1)[1].split()[0])
    assert last < 1024 * 1024 // 16, health.reason  # from the first MiB: lines of 16 bytes


def test_a_utf8_body_cut_mid_character_is_quoted_without_a_replacement_character():
    # "é" is two bytes: after a one-byte "x", the first MiB ends half way through one.
    body = b"x" + "é".encode() * (600 * 1024)
    with _Encoded(500, body, "text/plain; charset=utf-8") as url:
        spec = spec_for(url, timeout_seconds=5.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert "the first 1 MiB of its body (the rest was not read) ends: …éé" in health.reason, health.reason
    assert "\ufffd" not in health.reason and health.reason.endswith("é"), health.reason[-40:]


def test_a_passing_json_health_body_under_the_cap_is_still_read_for_its_verdict():
    # Just under 1 MiB, gzip-compressed: its verdict, at its end, is read and fails the check.
    padding = "x" * (1024 * 1024 - 200)
    body = ('{"details": "' + padding + '", "status": "DOWN"}').encode()
    with _Encoded(200, body, "application/json", gzip=True) as url:
        spec = spec_for(url, timeout_seconds=5.0)
        with http_checks.client(spec) as http:
            health = http_checks.check_health(http, spec)
    assert health.outcome == "failed" and 'its body says status "DOWN"' in health.reason, health.reason


def test_the_checks_carry_no_header_a_listener_rule_ahead_of_the_pin_is_read_never_to_meet(app):
    """``pinning.CHECK_HEADERS``: a rule on a header not among them is passed by every check. A header
    sent and not listed there would be read as never carried, and a rule on it ahead of the pin, which
    the checks meet, passed over."""
    from rollway.pinning import CHECK_HEADERS, CHECK_METHODS, CHECK_USER_AGENT

    app.faults.authorization = "Bearer s3cr3t"
    spec = spec_for(app.url, canary_header="X-Rollway-Target: canary", authorization_secret_block="edit-api-token")
    with http_checks.client(spec, SecretStr("Bearer s3cr3t")) as http:
        health = http_checks.check_health(http, spec)
        session = http_checks.create_session(http, spec)
        message = http_checks.send_message(http, spec, session.detail)
    assert health.passed and session.passed and message.passed, (health.reason, session.reason, message.reason)
    sent = {name.lower() for headers in app.headers for name in headers}
    assert sent - {"host", "x-rollway-target"} <= CHECK_HEADERS, sent
    assert {"x-rollway-target", "authorization", "user-agent", "content-type"} <= sent, sent
    # ``pinning.CHECK_USER_AGENT``: a rule on a User-Agent it does not match is read never to meet them.
    agents = {value for headers in app.headers for name, value in headers.items() if name.lower() == "user-agent"}
    assert agents == {CHECK_USER_AGENT}, agents
    # ``pinning.CHECK_METHODS``: a rule on methods none of these is read never to meet them.
    assert {method for method, _ in app.requests} == CHECK_METHODS, app.requests
